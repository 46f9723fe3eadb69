-- No statement of the service roles runs, and no transaction of theirs sits
-- idle, long enough to hold a pooled connection that other tenants need.
-- These apply to new sessions; a transaction that waits on a client is a bug
-- this stops from becoming an outage.
alter role voxanne_tenant set statement_timeout = '30s';
alter role voxanne_tenant set idle_in_transaction_session_timeout = '15s';
alter role voxanne_auth set statement_timeout = '30s';
alter role voxanne_auth set idle_in_transaction_session_timeout = '15s';
