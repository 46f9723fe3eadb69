-- Voice data: the phone-number registry, contacts, calls and SMS messages, and
-- the raw webhook events they are made from.

create extension if not exists btree_gin;

create table phone_numbers (
  org_id       uuid not null references organizations (id) on delete cascade,
  id           uuid not null default gen_random_uuid(),
  e164         text not null check (e164 ~ '^\+[1-9][0-9]{6,14}$'),
  provider     text not null check (provider in ('vapi', 'twilio')),
  provider_id  text,
  assistant_id text,
  label        text not null default '',
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  primary key (org_id, id)
);
-- A number, or a provider's id of it, belongs to at most one org.
create unique index phone_numbers_e164_key on phone_numbers (e164);
create unique index phone_numbers_provider_id_key on phone_numbers (provider, provider_id) where provider_id is not null;
create index phone_numbers_assistant_idx on phone_numbers (assistant_id) where assistant_id is not null;

create table contacts (
  org_id        uuid not null references organizations (id) on delete cascade,
  id            uuid not null default gen_random_uuid(),
  phone_number  text not null,
  name          text,
  email         text,
  notes         text not null default '',
  first_seen_at timestamptz not null default now(),
  last_seen_at  timestamptz not null default now(),
  call_count    int not null default 0,
  message_count int not null default 0,
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now(),
  primary key (org_id, id),
  unique (org_id, phone_number)
);
-- Lists page by creation; last_seen_at, updated by every event, is not indexed
-- so that those updates can stay heap-only.
create index contacts_list_idx on contacts (org_id, created_at desc, id desc);

create table calls (
  org_id             uuid not null references organizations (id) on delete cascade,
  id                 uuid not null default gen_random_uuid(),
  provider_call_id   text not null,
  direction          text,
  status             text not null default 'queued',
  status_rank        int not null default 0,
  from_number        text,
  to_number          text,
  contact_id         uuid,
  assistant_id       text,
  phone_number_id    uuid,
  started_at         timestamptz,
  ended_at           timestamptz,
  duration_seconds   double precision,
  ended_reason       text,
  cost_usd           numeric(12, 4),
  summary            text,
  success_evaluation text,
  transcript         text,
  messages           jsonb,
  structured_data    jsonb,
  recording_url      text,
  created_at         timestamptz not null default now(),
  updated_at         timestamptz not null default now(),
  search             tsvector generated always as (
    to_tsvector('english', coalesce(summary, '') || ' ' || coalesce(transcript, ''))) stored,
  primary key (org_id, id),
  unique (org_id, provider_call_id),
  foreign key (org_id, contact_id) references contacts (org_id, id) on delete set null (contact_id)
);
create index calls_list_idx on calls (org_id, created_at desc, id desc);
create index calls_contact_idx on calls (org_id, contact_id, created_at desc);
-- Per-org full-text search: btree_gin lets the GIN index lead with org_id.
create index calls_search_idx on calls using gin (org_id, search);

create table messages (
  org_id              uuid not null references organizations (id) on delete cascade,
  id                  uuid not null default gen_random_uuid(),
  provider_message_id text not null,
  direction           text not null check (direction in ('inbound', 'outbound')),
  from_number         text,
  to_number           text,
  body                text not null default '',
  status              text not null default 'received',
  status_rank         int not null default 0,
  media               jsonb not null default '[]',
  contact_id          uuid,
  created_at          timestamptz not null default now(),
  updated_at          timestamptz not null default now(),
  primary key (org_id, id),
  unique (org_id, provider_message_id),
  foreign key (org_id, contact_id) references contacts (org_id, id) on delete set null (contact_id)
);
create index messages_list_idx on messages (org_id, created_at desc, id desc);
create index messages_contact_idx on messages (org_id, contact_id, created_at desc);

-- Raw webhook events, stored before the 200 and processed by jobs. org_id is
-- null for unroutable events, which are kept but never attached to any org.
create table webhook_events (
  id           bigserial primary key,
  provider     text not null check (provider in ('vapi', 'twilio')),
  event_type   text not null,
  dedup_key    text not null unique,
  org_id       uuid references organizations (id) on delete cascade,
  payload      jsonb not null,
  status       text not null default 'pending' check (status in ('pending', 'processed', 'unroutable')),
  attempts     int not null default 0,
  job_id       bigint,
  last_error   text,
  received_at  timestamptz not null default now(),
  processed_at timestamptz
);
create index webhook_events_pending_idx on webhook_events (org_id, id) where status = 'pending';
create index webhook_events_unroutable_idx on webhook_events (received_at) where status = 'unroutable';

do $$
declare t text;
begin
  foreach t in array array['phone_numbers', 'contacts', 'calls', 'messages', 'webhook_events'] loop
    execute format('alter table %I enable row level security', t);
    execute format('alter table %I force row level security', t);
    execute format('create policy tenant_isolation on %I to voxanne_tenant using (org_id = (select auth.org_id())) with check (org_id = (select auth.org_id()))', t);
    execute format('create policy service on %I to voxanne_auth using (true) with check (true)', t);
  end loop;
end
$$;

grant select, insert, update, delete on phone_numbers, contacts, calls, messages to voxanne_tenant;
-- Raw events: the tenant role reads its own org's and marks them processed (the
-- job does so in the same transaction as the data it writes); it never changes
-- what was received.
grant select on webhook_events to voxanne_tenant;
grant update (status, processed_at, attempts, last_error) on webhook_events to voxanne_tenant;
grant select, insert, update, delete on phone_numbers, contacts, calls, messages, webhook_events to voxanne_auth;
grant usage, select on sequence webhook_events_id_seq to voxanne_auth;

-- Routing: which org a provider's event belongs to. The one cross-org lookup
-- the webhooks need, returning only the org and the matched number.
-- PL/pgSQL rather than SQL: a SECURITY DEFINER SQL function is never inlined
-- and would be planned again on every call, once per webhook event.
create or replace function route_phone_number(p_provider text, p_provider_id text, p_assistant_id text, p_e164 text)
  returns table (org_id uuid, phone_number_id uuid, assistant_id text)
  language plpgsql stable security definer
  set search_path = pg_catalog
  as $$
begin
  if p_provider_id is not null then
    return query select n.org_id, n.id, n.assistant_id from public.phone_numbers n
      where n.provider = p_provider and n.provider_id = p_provider_id;
    if found then return; end if;
  end if;
  if p_e164 is not null then
    return query select n.org_id, n.id, n.assistant_id from public.phone_numbers n where n.e164 = p_e164;
    if found then return; end if;
  end if;
  if p_assistant_id is not null then
    return query select n.org_id, n.id, n.assistant_id from public.phone_numbers n
      where n.assistant_id = p_assistant_id order by n.created_at limit 1;
  end if;
end
$$;
revoke all on function route_phone_number(text, text, text, text) from public;
grant execute on function route_phone_number(text, text, text, text) to voxanne_auth;
