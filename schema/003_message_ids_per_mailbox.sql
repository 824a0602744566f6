-- Schema version 3: the message ID of 1003/1004 is a sequence per recipient's mailbox,
-- unique within that mailbox forever (it was the global row ID, reused after deletes and
-- limited to 2^32 messages in all). messages.ID stays the row key (64-bit); MessageID is
-- the ID on the wire. clients.LastMessageID is the highest ID already delivered from that
-- mailbox (written when delivered messages are removed): a new ID is one more than it and
-- than every pending ID of the mailbox.
ALTER TABLE messages ADD COLUMN MessageID INTEGER NOT NULL DEFAULT 0;  -- 1..4294967295
-- Every pending message keeps the ID it was announced with.
UPDATE messages SET MessageID = ID;
ALTER TABLE clients ADD COLUMN LastMessageID INTEGER NOT NULL DEFAULT 0;
-- IDs given before this version came from one global sequence: continue above all of them
-- that are still known, so no mailbox sees an ID again that it could have seen pending.
UPDATE clients SET LastMessageID = (SELECT coalesce(max(ID), 0) FROM messages);
