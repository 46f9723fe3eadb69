-- Foundation: roles, the auth schema, organizations and memberships with forced
-- row-level security, Supabase's auth helpers and the sign-up trigger.

-- Roles are cluster-wide and may already exist (another database of the cluster,
-- or an earlier run that migrated down): create them only when missing.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'voxanne_auth') then
    create role voxanne_auth nologin noinherit nobypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'voxanne_tenant') then
    create role voxanne_tenant nologin noinherit nobypassrls;
  end if;
end
$$;

create schema if not exists auth;
revoke all on schema auth from public;
grant usage on schema auth to voxanne_auth, voxanne_tenant;

-- The claims of the current request, set transaction-locally by the tenant
-- transaction helper exactly as PostgREST does.
create or replace function auth.jwt() returns jsonb
  language sql stable
  as $$ select coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb $$;

create or replace function auth.uid() returns uuid
  language sql stable
  as $$ select nullif(auth.jwt() ->> 'sub', '')::uuid $$;

create or replace function auth.role() returns text
  language sql stable
  as $$ select nullif(auth.jwt() ->> 'role', '') $$;

-- The active organization: the one function every tenant policy reads, always
-- wrapped as (select auth.org_id()) so it is evaluated once per query.
create or replace function auth.org_id() returns uuid
  language sql stable
  as $$ select nullif(auth.jwt() -> 'app_metadata' ->> 'org_id', '')::uuid $$;

grant execute on function auth.jwt(), auth.uid(), auth.role(), auth.org_id() to voxanne_auth, voxanne_tenant;

create table auth.users (
  id                  uuid primary key default gen_random_uuid(),
  aud                 text not null default 'authenticated',
  role                text not null default 'authenticated',
  email               text not null,
  encrypted_password  text not null default '',
  email_confirmed_at  timestamptz,
  last_sign_in_at     timestamptz,
  raw_app_meta_data   jsonb not null default '{}',
  raw_user_meta_data  jsonb not null default '{}',
  created_at          timestamptz not null default now(),
  updated_at          timestamptz not null default now(),
  constraint users_email_lower check (email = lower(email))
);
create unique index users_email_key on auth.users (email);

create table auth.sessions (
  id           uuid primary key default gen_random_uuid(),
  user_id      uuid not null references auth.users (id) on delete cascade,
  org_id       uuid,
  aal          text not null default 'aal1',
  user_agent   text,
  ip           text,
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  refreshed_at timestamptz,
  revoked_at   timestamptz,
  revoked_reason text
);
create index sessions_user_id_idx on auth.sessions (user_id);

create table auth.refresh_tokens (
  id           bigserial primary key,
  token_hash   bytea not null unique,
  session_id   uuid not null references auth.sessions (id) on delete cascade,
  user_id      uuid not null references auth.users (id) on delete cascade,
  parent_id    bigint references auth.refresh_tokens (id) on delete set null,
  revoked      boolean not null default false,
  spent_at     timestamptz,
  created_at   timestamptz not null default now()
);
create index refresh_tokens_session_id_idx on auth.refresh_tokens (session_id);
create index refresh_tokens_parent_id_idx on auth.refresh_tokens (parent_id);

create table auth.signing_keys (
  kid          text primary key,
  algorithm    text not null default 'ES256',
  private_key  bytea not null,
  encrypted    boolean not null default false,
  public_jwk   jsonb not null,
  status       text not null default 'current' check (status in ('current', 'trusted', 'revoked')),
  created_at   timestamptz not null default now(),
  retired_at   timestamptz,
  trusted_until timestamptz
);
-- At most one key signs at a time.
create unique index signing_keys_one_current on auth.signing_keys ((true)) where status = 'current';

grant select, insert, update, delete on all tables in schema auth to voxanne_auth;
grant usage on all sequences in schema auth to voxanne_auth;

create table organizations (
  id         uuid primary key default gen_random_uuid(),
  name       text not null check (length(name) between 1 and 200),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table memberships (
  org_id     uuid not null references organizations (id) on delete cascade,
  -- Deferred: the sign-up trigger adds the owner membership before its user row.
  user_id    uuid not null references auth.users (id) on delete cascade deferrable initially deferred,
  role       text not null check (role in ('owner', 'admin', 'member')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (org_id, user_id)
);
create index memberships_user_id_idx on memberships (user_id);

alter table organizations enable row level security;
alter table organizations force row level security;
alter table memberships enable row level security;
alter table memberships force row level security;

-- The tenant role sees exactly the active organization's rows.
create policy tenant_isolation on organizations to voxanne_tenant
  using (id = (select auth.org_id())) with check (id = (select auth.org_id()));
create policy tenant_isolation on memberships to voxanne_tenant
  using (org_id = (select auth.org_id())) with check (org_id = (select auth.org_id()));

-- The auth service works across organizations (sign-up, sign-in, org switching),
-- and only through its own role.
create policy auth_service on organizations to voxanne_auth using (true) with check (true);
create policy auth_service on memberships to voxanne_auth using (true) with check (true);

grant usage on schema public to voxanne_auth, voxanne_tenant;
grant select, insert, update, delete on organizations, memberships to voxanne_tenant, voxanne_auth;

-- Sign-up creates the user's organization with the user as owner and stamps the
-- org into app_metadata in the same transaction, so the first token carries it.
create or replace function auth.handle_new_user() returns trigger
  language plpgsql
  set search_path = pg_catalog, public
  as $$
declare
  new_org uuid;
  org_name text;
begin
  if new.raw_app_meta_data ? 'org_id' then
    return new;
  end if;
  org_name := nullif(btrim(new.raw_user_meta_data ->> 'org_name'), '');
  if org_name is null then
    org_name := split_part(new.email, '@', 1) || '''s organization';
  end if;
  insert into public.organizations (name) values (left(org_name, 200)) returning id into new_org;
  insert into public.memberships (org_id, user_id, role) values (new_org, new.id, 'owner');
  new.raw_app_meta_data := new.raw_app_meta_data
    || jsonb_build_object('provider', 'email', 'providers', jsonb_build_array('email'),
                          'org_id', new_org, 'org_role', 'owner');
  return new;
end
$$;

create trigger on_auth_user_created before insert on auth.users
  for each row execute function auth.handle_new_user();
