-- Schema version 6: the same messages table, with its Type CHECK written as two ranges.
-- Schema 5's "Type BETWEEN 1 AND 4 OR Type IN (16, 17, 18, 19)" made SQLite build a temporary
-- b-tree of the four constants for every row whose Type is not 1-4 (an IN list of more than two
-- constants is looked up in an ephemeral index, built once per statement run): every v2 insert
-- paid for opening, filling and closing one, and v2 sends ran at ~88 % of v1's (issue 9,
-- docs/BENCHMARKS.md). Two BETWEENs are plain comparisons. The types accepted are the same
-- integers; Type has INTEGER affinity and the server binds integers. The table is rebuilt (a
-- CHECK cannot change in place) with every row, row key and column as it was.
CREATE TABLE messages_v6 (
  ID          INTEGER  PRIMARY KEY,         -- row key (64-bit); the wire's message ID is MessageID
  ToClient    BLOB(16) NOT NULL REFERENCES clients(ID),
  FromClient  BLOB(16) NOT NULL REFERENCES clients(ID),
  Type        INTEGER  NOT NULL CHECK (Type BETWEEN 1 AND 4 OR Type BETWEEN 16 AND 19),
  Content     BLOB,                         -- the content when kept inline, else NULL
  ContentSize INTEGER  NOT NULL,            -- bytes of content (inline or in ContentFile)
  ContentFile TEXT,                         -- large content: file name in the spool directory
  SentAt      TEXT     NOT NULL,            -- UTC, 'YYYY-MM-DD HH:MM:SS', when it was stored
  MessageID   INTEGER  NOT NULL DEFAULT 0,  -- 1..4294967295, per recipient's mailbox (schema 3)
  GroupID     BLOB(16) CHECK (GroupID IS NULL OR length(GroupID) = 16),  -- a group message's group
  ContentRef  INTEGER  REFERENCES contents(ID)  -- a group message's shared content (schema 5)
);
INSERT INTO messages_v6 (ID, ToClient, FromClient, Type, Content, ContentSize, ContentFile, SentAt, MessageID, GroupID, ContentRef)
  SELECT ID, ToClient, FromClient, Type, Content, ContentSize, ContentFile, SentAt, MessageID, GroupID, ContentRef FROM messages;
DROP TABLE messages;
ALTER TABLE messages_v6 RENAME TO messages;
