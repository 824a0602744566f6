-- Schema version 4: protocol v2 (docs/PROTOCOL.md Part II). A v2 client registers an Ed25519
-- identity key (its ID is derived from it), an X25519 agreement key and the identity key's
-- signature over name ‖ agreement key ‖ legacy key; v1 clients have NULL in all three.
-- Every existing client stays a v1 client.
ALTER TABLE clients ADD COLUMN IdentityKey BLOB CHECK (IdentityKey IS NULL OR length(IdentityKey) = 32);
ALTER TABLE clients ADD COLUMN AgreementKey BLOB CHECK (AgreementKey IS NULL OR length(AgreementKey) = 32);
ALTER TABLE clients ADD COLUMN KeySignature BLOB CHECK (KeySignature IS NULL OR length(KeySignature) = 64);

-- Messages may now also be v2 sealed envelopes (types 16 text, 17 file). SQLite cannot change
-- a CHECK constraint in place: the table is rebuilt with every row, row key and column as it was.
CREATE TABLE messages_v4 (
  ID          INTEGER  PRIMARY KEY,         -- row key (64-bit); the wire's message ID is MessageID
  ToClient    BLOB(16) NOT NULL REFERENCES clients(ID),
  FromClient  BLOB(16) NOT NULL REFERENCES clients(ID),
  Type        INTEGER  NOT NULL CHECK (Type BETWEEN 1 AND 4 OR Type IN (16, 17)),
  Content     BLOB,                         -- the content when kept inline, else NULL
  ContentSize INTEGER  NOT NULL,            -- bytes of content (inline or in ContentFile)
  ContentFile TEXT,                         -- large content: file name in the spool directory
  SentAt      TEXT     NOT NULL,            -- UTC, 'YYYY-MM-DD HH:MM:SS', when it was stored
  MessageID   INTEGER  NOT NULL DEFAULT 0   -- 1..4294967295, per recipient's mailbox (schema v3)
);
INSERT INTO messages_v4 (ID, ToClient, FromClient, Type, Content, ContentSize, ContentFile, SentAt, MessageID)
  SELECT ID, ToClient, FromClient, Type, Content, ContentSize, ContentFile, SentAt, MessageID FROM messages;
DROP TABLE messages;
ALTER TABLE messages_v4 RENAME TO messages;
