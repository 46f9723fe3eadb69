// Package archtest holds the tests that keep the code layout's rules
// (docs/architecture.md): which packages may import which, and a doc comment on
// every exported name. It has no code of its own; see its _test.go files.
package archtest
