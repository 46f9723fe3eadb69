-- River's tables (and their grants) are dropped by River's migrator right after
-- this file.
revoke usage, select on all sequences in schema public from voxanne_auth;
