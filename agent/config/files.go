package config

// CheckFiles reads the files that subsystems open only when the agent
// starts (the forwarder's secrets and TLS files), and reports each that
// cannot be read with the file and line of its key. Load does not do this,
// so that a reload is not refused while such a file is being replaced;
// `vigil config validate` does, so that it does not call valid a
// configuration the agent would refuse to start with.
func (l *Loaded) CheckFiles() error {
	if errs := l.keyedErrors(l.Forward.CheckFiles()); len(errs) > 0 {
		return errs
	}
	return nil
}
