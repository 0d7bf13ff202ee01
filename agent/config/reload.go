package config

import (
	"fmt"
	"net"
)

// CheckReload reports why next cannot be applied over running by a reload
// (SIGHUP). A reload keeps the running api.addr and api.insecure_allow_remote
// (they change only on restart) but takes the new api.tokens, so a reload
// that removes every token while the API listens beyond loopback would
// leave it open to the network without authentication, even when next
// moves api.addr to loopback.
func CheckReload(running, next *Config) error {
	if len(next.API.Tokens) > 0 || running.API.InsecureAllowRemote || running.API.Addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(running.API.Addr)
	if err != nil || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("api.tokens: the API listens on %s, beyond loopback, and api.addr changes only on restart, so a reload cannot remove every token; restart the agent (systemctl restart vigil) to apply the new configuration", running.API.Addr)
}
