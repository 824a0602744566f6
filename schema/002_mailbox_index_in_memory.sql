-- Schema version 2: the server keeps each recipient's pending message IDs in memory (loaded
-- at start-up), so the (ToClient, ID) index only cost a scattered page write per recipient
-- per commit. Without it a batch of sends appends to the end of one table. Queries by
-- recipient in the sqlite3 shell still work (as a scan).
DROP INDEX IF EXISTS messages_by_recipient;
