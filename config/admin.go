package config

// Admin configures the admin listener's API.
type Admin struct {
	// TokenFile holds the bearer token the admin API requires (the file's
	// bytes, one trailing newline trimmed). Without it, the API answers
	// only when admin_listen is a loopback address. Default "".
	TokenFile string `yaml:"token_file"`
	// ReadyFDShare marks the gateway not ready (/readyz 503) when open
	// descriptors exceed this share of the limit, default 90%.
	ReadyFDShare Percent `yaml:"ready_fd_share"`
}

// adminProblems checks the admin section.
func adminProblems(a Admin) []problem {
	var ps problems
	if a.ReadyFDShare <= 0 || a.ReadyFDShare > 1 {
		ps.add("ready_fd_share", "must be above 0 and at most 100%%")
	}
	return ps
}
