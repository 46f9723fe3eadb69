-- Webhook routing that no tenant can claim. Events on the shared endpoints
-- (platform secrets) route only through assignments made by the platform
-- operator; an org that brings its own Vapi or Twilio account gets endpoints of
-- its own, whose credential alone says which org an event belongs to. Numbers an
-- org registers in phone_numbers only label its own traffic from here on.

-- Operator assignments: which org the shared endpoints route a number, a
-- provider's number id or an assistant id to. Each is unique among
-- assignments. Tenants may read their own org's assignments, never write them.
create table phone_number_assignments (
  org_id       uuid not null references organizations (id) on delete cascade,
  id           uuid not null default gen_random_uuid(),
  e164         text check (e164 ~ '^\+[1-9][0-9]{6,14}$'),
  provider     text not null check (provider in ('vapi', 'twilio')),
  provider_id  text,
  assistant_id text,
  label        text not null default '',
  created_at   timestamptz not null default now(),
  primary key (org_id, id),
  check (e164 is not null or provider_id is not null or assistant_id is not null)
);
create unique index phone_number_assignments_e164_key on phone_number_assignments (e164) where e164 is not null;
create unique index phone_number_assignments_provider_id_key on phone_number_assignments (provider, provider_id) where provider_id is not null;
create unique index phone_number_assignments_assistant_key on phone_number_assignments (assistant_id) where assistant_id is not null;

alter table phone_number_assignments enable row level security;
alter table phone_number_assignments force row level security;
create policy tenant_read on phone_number_assignments for select to voxanne_tenant using (org_id = (select auth.org_id()));
create policy service on phone_number_assignments to voxanne_auth using (true) with check (true);
grant select on phone_number_assignments to voxanne_tenant;
grant select, insert, update, delete on phone_number_assignments to voxanne_auth;

-- An org's own webhook endpoints. secret is the Vapi secret or the org's Twilio
-- auth token, sealed with the key-encryption key when one is configured
-- (encrypted = true). After a rotation the previous secret is accepted until
-- previous_valid_until.
create table webhook_endpoints (
  org_id               uuid not null references organizations (id) on delete cascade,
  id                   uuid not null default gen_random_uuid(),
  provider             text not null check (provider in ('vapi', 'twilio')),
  secret               bytea not null,
  encrypted            boolean not null,
  previous_secret      bytea,
  previous_encrypted   boolean,
  previous_valid_until timestamptz,
  created_at           timestamptz not null default now(),
  rotated_at           timestamptz,
  primary key (org_id, id)
);
-- Deliveries name only the endpoint id: the service role looks it up by id.
create unique index webhook_endpoints_id_key on webhook_endpoints (id);

alter table webhook_endpoints enable row level security;
alter table webhook_endpoints force row level security;
create policy tenant_isolation on webhook_endpoints to voxanne_tenant
  using (org_id = (select auth.org_id())) with check (org_id = (select auth.org_id()));
create policy service on webhook_endpoints to voxanne_auth using (true) with check (true);
-- The tenant role manages its own org's endpoints (a rotation moves the
-- current secret to previous_secret, which reads it); the API never returns a
-- stored secret.
grant select, insert, delete on webhook_endpoints to voxanne_tenant;
grant update (secret, encrypted, previous_secret, previous_encrypted, previous_valid_until, rotated_at) on webhook_endpoints to voxanne_tenant;
grant select, insert, update, delete on webhook_endpoints to voxanne_auth;

-- Shared-endpoint routing reads operator assignments only. It returns the
-- assignment's org and assistant, and the id of the org's own registered number
-- that matches, if any, as a label.
create or replace function route_phone_number(p_provider text, p_provider_id text, p_assistant_id text, p_e164 text)
  returns table (org_id uuid, phone_number_id uuid, assistant_id text)
  language plpgsql stable security definer
  set search_path = pg_catalog
  as $$
declare
  a public.phone_number_assignments%rowtype;
begin
  if p_provider_id is not null then
    select * into a from public.phone_number_assignments n where n.provider = p_provider and n.provider_id = p_provider_id;
  end if;
  if a.org_id is null and p_e164 is not null then
    select * into a from public.phone_number_assignments n where n.e164 = p_e164;
  end if;
  if a.org_id is null and p_assistant_id is not null then
    select * into a from public.phone_number_assignments n where n.assistant_id = p_assistant_id;
  end if;
  if a.org_id is null then
    return;
  end if;
  return query select a.org_id,
    (select l.id from public.phone_numbers l where l.org_id = a.org_id
       and (l.e164 = coalesce(a.e164, p_e164) or (l.provider = p_provider and l.provider_id = coalesce(a.provider_id, p_provider_id)))
     limit 1),
    a.assistant_id;
end
$$;
revoke all on function route_phone_number(text, text, text, text) from public;
grant execute on function route_phone_number(text, text, text, text) to voxanne_auth;

-- Registrations are labels now, unique within their org only: another org's
-- registration of a number no longer blocks (or routes) anything.
drop index phone_numbers_e164_key;
drop index phone_numbers_provider_id_key;
create unique index phone_numbers_org_e164_key on phone_numbers (org_id, e164);
create unique index phone_numbers_org_provider_id_key on phone_numbers (org_id, provider, provider_id) where provider_id is not null;
