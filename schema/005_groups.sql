-- Schema version 5: groups (docs/PROTOCOL.md Part IV). A group has a random 16-byte ID, a name,
-- an admin and an open flag; group_members holds its members (State 1, in join order = rowid
-- order) and invitations (State 0); group_bans its ban list. Deleting a group deletes both.
CREATE TABLE groups (
  ID        BLOB(16) PRIMARY KEY CHECK (length(ID) = 16),
  Name      TEXT     NOT NULL,               -- the name rules of §3; not unique
  Admin     BLOB(16) NOT NULL REFERENCES clients(ID),
  Open      INTEGER  NOT NULL CHECK (Open IN (0, 1)),  -- 1: anyone may join
  CreatedAt TEXT     NOT NULL                -- UTC, 'YYYY-MM-DD HH:MM:SS'
);
CREATE TABLE group_members (
  GroupID  BLOB(16) NOT NULL REFERENCES groups(ID) ON DELETE CASCADE,
  ClientID BLOB(16) NOT NULL REFERENCES clients(ID),
  State    INTEGER  NOT NULL CHECK (State IN (0, 1)),  -- 1 member, 0 invited
  PRIMARY KEY (GroupID, ClientID)
);
CREATE TABLE group_bans (
  GroupID  BLOB(16) NOT NULL REFERENCES groups(ID) ON DELETE CASCADE,
  ClientID BLOB(16) NOT NULL REFERENCES clients(ID),
  PRIMARY KEY (GroupID, ClientID)
);

-- A group message's content, stored once for every mailbox that holds it: Refs counts the
-- messages rows referring to it (ContentRef); the last one removed deletes it (and, after the
-- commit, its spool file).
CREATE TABLE contents (
  ID          INTEGER PRIMARY KEY,
  Content     BLOB,                          -- inline content, else NULL
  ContentSize INTEGER NOT NULL,
  ContentFile TEXT,                          -- spool file name, else NULL
  Refs        INTEGER NOT NULL CHECK (Refs >= 0)
);

-- Messages may now also be group envelopes (types 18 text, 19 file), carry the group they came
-- from (GroupID; no foreign key: a group may be deleted while its messages wait) and refer to a
-- shared content (ContentRef) instead of holding one. The table is rebuilt (a CHECK cannot
-- change in place) with every row, row key and column as it was.
CREATE TABLE messages_v5 (
  ID          INTEGER  PRIMARY KEY,
  ToClient    BLOB(16) NOT NULL REFERENCES clients(ID),
  FromClient  BLOB(16) NOT NULL REFERENCES clients(ID),
  Type        INTEGER  NOT NULL CHECK (Type BETWEEN 1 AND 4 OR Type IN (16, 17, 18, 19)),
  Content     BLOB,
  ContentSize INTEGER  NOT NULL,
  ContentFile TEXT,
  SentAt      TEXT     NOT NULL,
  MessageID   INTEGER  NOT NULL DEFAULT 0,
  GroupID     BLOB(16) CHECK (GroupID IS NULL OR length(GroupID) = 16),
  ContentRef  INTEGER  REFERENCES contents(ID)
);
INSERT INTO messages_v5 (ID, ToClient, FromClient, Type, Content, ContentSize, ContentFile, SentAt, MessageID)
  SELECT ID, ToClient, FromClient, Type, Content, ContentSize, ContentFile, SentAt, MessageID FROM messages;
DROP TABLE messages;
ALTER TABLE messages_v5 RENAME TO messages;
