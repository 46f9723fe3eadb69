package pglocal

// Abandon lets go of the data directory without stopping the server, as a
// process killed with SIGKILL does: its lock goes, its record and its server
// stay.
func (c *Cluster) Abandon() {
	c.lock.Close()
	c.lock = nil
}
