-- Background jobs: River's own tables are created by River's migrator, which the
-- migration runner calls for this version just before this file. The service
-- role (voxanne_auth) enqueues jobs in the same transaction as the event it
-- stores; the tenant role gets nothing here.
do $$
declare t text;
begin
  for t in select tablename from pg_tables where schemaname = current_schema() and tablename like 'river\_%' loop
    execute format('grant select, insert, update, delete on %I to voxanne_auth', t);
  end loop;
end
$$;
grant usage, select on all sequences in schema public to voxanne_auth;
