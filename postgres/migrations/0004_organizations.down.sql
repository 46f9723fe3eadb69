drop function if exists org_member_emails();
drop table if exists audit_heads;
drop trigger if exists audit_chain on audit_log;
drop function if exists audit_chain();
drop table if exists audit_log cascade;
drop function if exists audit_canonical(audit_log);
drop table if exists invitations;
