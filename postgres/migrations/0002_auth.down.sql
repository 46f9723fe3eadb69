alter table auth.signing_keys drop column if exists max_token_exp;
drop table if exists auth.one_time_tokens;
alter table auth.sessions drop column if exists secret;
