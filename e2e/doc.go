// Package e2e holds end-to-end tests that run the real voxanne binary, with its
// own managed PostgreSQL, and drive it from outside: the official
// @supabase/auth-js client (e2e/authjs), and process-level scenarios.
package e2e
