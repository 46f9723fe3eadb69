-- Audit chains keyed with a secret kept outside the database. When the server
-- has an audit key (VOXANNE_AUDIT_KEY), it sets voxanne.audit_key on each of its
-- connections and every new entry's hash is HMAC-SHA256(key, prev_hash ||
-- canonical(entry)) instead of a plain SHA-256: someone who can edit rows can no
-- longer recompute the chain after an edit without that key. keyed records
-- which form an entry's hash has; entries made before a key was configured
-- stay plain.
alter table audit_log add column keyed boolean not null default false;

-- HMAC-SHA256 (RFC 2104) from the built-in sha256, so no extension is needed.
create or replace function audit_hmac(key bytea, msg bytea) returns bytea
  language plpgsql immutable strict
  set search_path = pg_catalog
  as $$
declare
  k bytea;
  ipad bytea;
  opad bytea;
begin
  if length(key) > 64 then
    key := sha256(key);
  end if;
  k := key || decode(repeat('00', 64 - length(key)), 'hex');
  ipad := k;
  opad := k;
  for i in 0..63 loop
    ipad := set_byte(ipad, i, get_byte(k, i) # 54);
    opad := set_byte(opad, i, get_byte(k, i) # 92);
  end loop;
  return sha256(opad || sha256(ipad || msg));
end
$$;

create or replace function audit_chain() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, public
  as $$
declare
  head audit_heads;
  key text := current_setting('voxanne.audit_key', true);
begin
  -- The row lock on the head serializes writers of one org: seq stays gap-free.
  insert into audit_heads (org_id, seq, hash) values (new.org_id, 0, '\x'::bytea)
    on conflict (org_id) do nothing;
  select * into head from audit_heads where org_id = new.org_id for update;
  new.seq := head.seq + 1;
  new.at := now();
  new.prev_hash := head.hash;
  new.keyed := coalesce(key, '') <> '';
  if new.keyed then
    new.hash := audit_hmac(decode(key, 'hex'), head.hash || audit_canonical(new));
  else
    new.hash := sha256(head.hash || audit_canonical(new));
  end if;
  update audit_heads set seq = new.seq, hash = new.hash where org_id = new.org_id;
  return new;
end
$$;
