alter role voxanne_tenant reset statement_timeout;
alter role voxanne_tenant reset idle_in_transaction_session_timeout;
alter role voxanne_auth reset statement_timeout;
alter role voxanne_auth reset idle_in_transaction_session_timeout;
