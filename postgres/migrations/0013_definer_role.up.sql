-- Functions that act beyond their caller's rights (SECURITY DEFINER) run as
-- voxanne_definer instead of the owner, and backups read as voxanne_backup.
--
-- A definer function runs with its owner's rights. Under a superuser owner
-- (the managed cluster) that bypassed row-level security; under an owner that
-- is no superuser (what an external PostgreSQL gives: the database's owner
-- with CREATEROLE) forced row-level security applies to the owner too, no
-- policy names it, and so the audit chain could not write its head (sign-in
-- failed), routing found no number (every webhook was stored unroutable) and
-- the member list lost its e-mail addresses. voxanne_definer owns every
-- SECURITY DEFINER function and has exactly the grants and policies their
-- bodies need. It cannot log in and is no member of anything. Every migration
-- run ends by handing any SECURITY DEFINER function in schemas public and auth
-- to it (so a later migration's function runs as it too; that migration
-- grants it what the function needs).
--
-- voxanne_backup is the role `voxanne backup` dumps as (pg_dump --role): it
-- reads every table, through a select-only policy on each table that has
-- row-level security. It cannot log in either.
--
-- The owner becomes a member of both: handing a function to a role, changing
-- such a function later and SET ROLE need it. Roles are cluster-wide and may
-- exist already (another database of the cluster, an earlier run).
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'voxanne_definer') then
    create role voxanne_definer nologin noinherit nobypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'voxanne_backup') then
    create role voxanne_backup nologin noinherit nobypassrls;
  end if;
end
$$;
grant voxanne_definer, voxanne_backup to current_user;

grant usage on schema public, auth to voxanne_definer;
-- audit_chain(): the per-org head of the hash chain.
grant select, insert, update on audit_heads to voxanne_definer;
create policy definer on audit_heads to voxanne_definer using (true) with check (true);
-- route_phone_number(): operator assignments, and the org's own registered
-- number as a label.
grant select on phone_number_assignments to voxanne_definer;
create policy definer on phone_number_assignments for select to voxanne_definer using (true);
grant select (org_id, id, e164, provider, provider_id) on phone_numbers to voxanne_definer;
create policy definer on phone_numbers for select to voxanne_definer using (true);
-- org_member_emails(): the active organization's members (the function
-- filters by the org) and their addresses.
grant select (org_id, user_id) on memberships to voxanne_definer;
create policy definer on memberships for select to voxanne_definer using (true);
grant select (id, email) on auth.users to voxanne_definer;
grant execute on function auth.jwt(), auth.org_id() to voxanne_definer;
-- The revocation triggers (auth.revocations has no row-level security).
grant insert on auth.revocations to voxanne_definer;
grant usage on sequence auth.revocations_id_seq to voxanne_definer;

-- A new owner needs CREATE on the function's schema (unless a superuser does
-- it); the role keeps it only for the hand-over.
grant create on schema public, auth to voxanne_definer;
alter function auth.revoke_session() owner to voxanne_definer;
alter function auth.revoke_membership() owner to voxanne_definer;
alter function auth.revoke_user() owner to voxanne_definer;
alter function audit_chain() owner to voxanne_definer;
alter function org_member_emails() owner to voxanne_definer;
alter function route_phone_number(text, text, text, text) owner to voxanne_definer;
revoke create on schema public, auth from voxanne_definer;

grant usage on schema public, auth to voxanne_backup;
grant select on all tables in schema public, auth to voxanne_backup;
grant select on all sequences in schema public, auth to voxanne_backup;
do $$
declare t regclass;
begin
  for t in select c.oid::regclass from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where n.nspname in ('public', 'auth') and c.relkind in ('r', 'p') and c.relrowsecurity loop
    execute format('create policy backup on %s for select to voxanne_backup using (true)', t);
  end loop;
end
$$;
