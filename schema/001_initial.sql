-- Letterbox server.db, schema version 1. Column names follow the original design
-- (PROTOCOL.md "Server storage"); added columns say what they hold.
CREATE TABLE clients (
  ID        BLOB(16)  PRIMARY KEY,          -- 16 random bytes (v4 UUID) chosen by the server
  Name      TEXT      NOT NULL UNIQUE,      -- 1..254 bytes of UTF-8
  PublicKey BLOB(160) NOT NULL,             -- RSA-1024 X.509 DER, exactly 160 bytes
  LastSeen  TEXT                            -- UTC, 'YYYY-MM-DD HH:MM:SS', last request 101-104
);

CREATE TABLE messages (
  ID          INTEGER  PRIMARY KEY,         -- the 4-byte message ID of 1003/1004 (send order)
  ToClient    BLOB(16) NOT NULL REFERENCES clients(ID),
  FromClient  BLOB(16) NOT NULL REFERENCES clients(ID),
  Type        INTEGER  NOT NULL CHECK (Type BETWEEN 1 AND 4),
  Content     BLOB,                         -- the encrypted content when kept inline, else NULL
  ContentSize INTEGER  NOT NULL,            -- bytes of content (inline or in ContentFile)
  ContentFile TEXT,                         -- large content: file name in the spool directory
  SentAt      TEXT     NOT NULL             -- UTC, 'YYYY-MM-DD HH:MM:SS', when it was stored
);

-- A pull reads one recipient's messages in send order.
CREATE INDEX messages_by_recipient ON messages (ToClient, ID);
