package pglocal

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
)

// FindTool returns the path of a PostgreSQL client program (pg_dump,
// pg_restore, psql): from the directory FindBinDir finds when it has one, so
// that it matches the server binaries the managed cluster runs, else from the
// newest /usr/lib/postgresql/*/bin that has it, else from PATH (a machine with
// only the client package).
func FindTool(name string) (string, error) {
	var dirs []string
	if d, err := FindBinDir(); err == nil {
		dirs = append(dirs, d)
	}
	installed, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(installed, func(i, j int) bool { return majorOf(installed[i]) > majorOf(installed[j]) })
	for _, d := range append(dirs, installed...) {
		if p := filepath.Join(d, name); isExec(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("no %s found (looked beside the server binaries, in /usr/lib/postgresql/*/bin and in PATH): install the PostgreSQL client programs (e.g. `apt-get install postgresql-client`)", name)
}
