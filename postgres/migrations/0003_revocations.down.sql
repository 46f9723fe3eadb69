drop trigger if exists revoke_on_user_delete on auth.users;
drop trigger if exists revoke_on_membership_delete on public.memberships;
drop trigger if exists revoke_on_membership_change on public.memberships;
drop trigger if exists revoke_on_session_end on auth.sessions;
drop function if exists auth.revoke_user();
drop function if exists auth.revoke_membership();
drop function if exists auth.revoke_session();
drop table if exists auth.revocations;
drop function if exists auth.announce_revocation();
