-- Organizations: invitations, a tamper-evident audit log per org, and the
-- narrow lookups the tenant role needs.

create table invitations (
  org_id      uuid not null references organizations (id) on delete cascade,
  id          uuid not null default gen_random_uuid(),
  email       text not null check (email = lower(email)),
  role        text not null check (role in ('owner', 'admin', 'member')),
  token_hash  bytea not null unique,
  invited_by  uuid,
  created_at  timestamptz not null default now(),
  expires_at  timestamptz not null,
  accepted_at timestamptz,
  accepted_by uuid,
  primary key (org_id, id)
);
-- One open invitation per address and org: re-inviting replaces it.
create unique index invitations_open_email on invitations (org_id, email) where accepted_at is null;

alter table invitations enable row level security;
alter table invitations force row level security;
create policy tenant_isolation on invitations to voxanne_tenant
  using (org_id = (select auth.org_id())) with check (org_id = (select auth.org_id()));
create policy auth_service on invitations to voxanne_auth using (true) with check (true);
grant select, insert, update, delete on invitations to voxanne_tenant, voxanne_auth;

-- The audit log. seq has no gaps per org and every entry's hash covers the
-- previous hash and the entry's canonical form; both are set by a trigger from
-- the per-org head, whatever the inserting statement says.
create table audit_log (
  org_id      uuid not null references organizations (id) on delete cascade,
  id          uuid not null default gen_random_uuid(),
  seq         bigint not null,
  at          timestamptz not null default now(),
  actor_id    uuid,
  action      text not null check (length(action) between 1 and 100),
  target_type text,
  target_id   text,
  ip          text,
  details     jsonb not null default '{}',
  prev_hash   bytea not null,
  hash        bytea not null,
  primary key (org_id, id),
  unique (org_id, seq)
);
create index audit_log_action_idx on audit_log (org_id, action, seq);

create table audit_heads (
  org_id uuid primary key references organizations (id) on delete cascade,
  seq    bigint not null,
  hash   bytea not null
);

-- The canonical form of an entry: a JSON array of its fields in a fixed order,
-- times in UTC with microseconds. jsonb's text form is deterministic.
create or replace function audit_canonical(e audit_log) returns bytea
  language sql immutable
  set search_path = pg_catalog
  as $$
    select convert_to(jsonb_build_array(e.org_id, e.seq,
      to_char(e.at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
      e.actor_id, e.action, e.target_type, e.target_id, e.ip, e.details)::text, 'UTF8')
  $$;

create or replace function audit_chain() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, public
  as $$
declare
  head audit_heads;
begin
  -- The row lock on the head serializes writers of one org: seq stays gap-free.
  insert into audit_heads (org_id, seq, hash) values (new.org_id, 0, '\x'::bytea)
    on conflict (org_id) do nothing;
  select * into head from audit_heads where org_id = new.org_id for update;
  new.seq := head.seq + 1;
  new.at := now();
  new.prev_hash := head.hash;
  new.hash := sha256(head.hash || audit_canonical(new));
  update audit_heads set seq = new.seq, hash = new.hash where org_id = new.org_id;
  return new;
end
$$;
create trigger audit_chain before insert on audit_log
  for each row execute function audit_chain();

alter table audit_log enable row level security;
alter table audit_log force row level security;
create policy tenant_isolation on audit_log to voxanne_tenant
  using (org_id = (select auth.org_id())) with check (org_id = (select auth.org_id()));
create policy auth_service on audit_log to voxanne_auth using (true) with check (true);
-- Append-only for the application: insert and read, never update or delete.
grant select, insert on audit_log to voxanne_tenant, voxanne_auth;

alter table audit_heads enable row level security;
alter table audit_heads force row level security;
create policy tenant_isolation on audit_heads to voxanne_tenant
  using (org_id = (select auth.org_id()));
grant select on audit_heads to voxanne_tenant;

-- The members of the active org with their email addresses: the tenant role may
-- not read auth.users, so this returns just these two columns for just this org.
create or replace function org_member_emails() returns table (user_id uuid, email text)
  language sql stable security definer
  set search_path = pg_catalog
  as $$
    select u.id, u.email from auth.users u
    join public.memberships m on m.user_id = u.id
    where m.org_id = (select auth.org_id())
  $$;
revoke all on function org_member_emails() from public;
grant execute on function org_member_emails() to voxanne_tenant;
