-- Revocations: every change that must end tokens before they expire is written
-- here by a trigger and announced with NOTIFY at commit, so every instance drops
-- what it cached. The table also lets an instance whose listener connection broke
-- catch up on what it missed.

create table auth.revocations (
  id         bigserial primary key,
  kind       text not null check (kind in ('session', 'membership', 'user')),
  session_id uuid,
  user_id    uuid not null,
  org_id     uuid,
  created_at timestamptz not null default clock_timestamp()
);
create index revocations_created_at_idx on auth.revocations (created_at);
grant select, insert, delete on auth.revocations to voxanne_auth;
grant usage on sequence auth.revocations_id_seq to voxanne_auth;

create or replace function auth.announce_revocation() returns trigger
  language plpgsql
  set search_path = pg_catalog
  as $$
begin
  perform pg_notify('voxanne_revocations', json_build_object(
    'id', new.id, 'kind', new.kind, 'session_id', new.session_id,
    'user_id', new.user_id, 'org_id', new.org_id,
    'at', (extract(epoch from new.created_at) * 1000000)::bigint)::text);
  return null;
end
$$;
create trigger announce after insert on auth.revocations
  for each row execute function auth.announce_revocation();

-- The triggers below run with the definer's rights so that the tenant role, which
-- cannot touch auth.*, still records the revocations its changes cause.
create or replace function auth.revoke_session() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog
  as $$
begin
  insert into auth.revocations (kind, session_id, user_id) values ('session', new.id, new.user_id);
  return null;
end
$$;
create trigger revoke_on_session_end after update of revoked_at on auth.sessions
  for each row when (old.revoked_at is null and new.revoked_at is not null)
  execute function auth.revoke_session();

create or replace function auth.revoke_membership() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog
  as $$
begin
  insert into auth.revocations (kind, user_id, org_id) values ('membership', old.user_id, old.org_id);
  return null;
end
$$;
create trigger revoke_on_membership_change after update of role on public.memberships
  for each row when (old.role is distinct from new.role)
  execute function auth.revoke_membership();
create trigger revoke_on_membership_delete after delete on public.memberships
  for each row execute function auth.revoke_membership();

create or replace function auth.revoke_user() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog
  as $$
begin
  insert into auth.revocations (kind, user_id) values ('user', old.id);
  return null;
end
$$;
create trigger revoke_on_user_delete after delete on auth.users
  for each row execute function auth.revoke_user();

revoke all on function auth.revoke_session(), auth.revoke_membership(), auth.revoke_user(), auth.announce_revocation() from public;
