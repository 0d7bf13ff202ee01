//go:build !unix

package conformance

import (
	"os"
	"os/exec"
)

// On systems without process groups the kit checks only the plugin process.

func setProcessGroup(*exec.Cmd) {}

func groupAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	p.Release()
	return false
}

func killGroup(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil
	}
	return p.Kill()
}
