drop table org_deletions;
