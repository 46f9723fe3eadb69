-- Back to routing through tenant registrations. Refused while two orgs
-- register the same number or provider id (the old unique indexes fail).
drop index phone_numbers_org_e164_key;
drop index phone_numbers_org_provider_id_key;
create unique index phone_numbers_e164_key on phone_numbers (e164);
create unique index phone_numbers_provider_id_key on phone_numbers (provider, provider_id) where provider_id is not null;

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

drop table webhook_endpoints;
drop table phone_number_assignments;
