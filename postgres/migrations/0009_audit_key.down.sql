-- Back to plain SHA-256 chains. Keyed entries keep their hashes, which the old
-- verification reports as invalid: roll back only if no key was ever set.
create or replace function audit_chain() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, public
  as $$
declare
  head audit_heads;
begin
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
drop function audit_hmac(bytea, bytea);
alter table audit_log drop column keyed;
