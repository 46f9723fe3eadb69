-- A record of every deleted organization that outlives it. The org's own audit
-- log goes with the org (it is the org's data, and deleting an org deletes all of
-- it); this row keeps who deleted it, when and how, its members, and the seq and
-- hash of the final audit entry (org_deleted), so that an audit log exported
-- earlier can still be checked against the chain's last head.
create table org_deletions (
  org_id     uuid primary key,
  name       text not null,
  deleted_at timestamptz not null default now(),
  deleted_by uuid,
  via        text not null check (via in ('api', 'admin_user_delete')),
  ip         text,
  members    jsonb not null default '[]',
  audit_seq  bigint not null,
  audit_hash bytea not null
);

alter table org_deletions enable row level security;
alter table org_deletions force row level security;
-- The tenant role may only add the record of its own org, and never read one.
create policy tenant_insert on org_deletions for insert to voxanne_tenant
  with check (org_id = (select auth.org_id()));
create policy auth_service on org_deletions to voxanne_auth using (true) with check (true);
grant insert on org_deletions to voxanne_tenant;
grant select, insert on org_deletions to voxanne_auth;
