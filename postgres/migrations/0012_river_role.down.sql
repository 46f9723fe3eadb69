-- The role stays (it is cluster-wide and may serve other databases of the
-- cluster); only this database's grants go. River then runs as the owner.
do $$
declare t text;
begin
  for t in select tablename from pg_tables where schemaname = current_schema() and tablename like 'river\_%' loop
    execute format('revoke all on %I from voxanne_river', t);
  end loop;
  for t in select sequencename from pg_sequences where schemaname = current_schema() and sequencename like 'river\_%' loop
    execute format('revoke all on sequence %I from voxanne_river', t);
  end loop;
end
$$;
revoke all on schema public from voxanne_river;
