// Command oidc-provider runs kubepim's test OpenID provider
// (test/oidcprovider) on loopback: for trying the console against a local
// control plane. It keeps its CA, the client secret and the users (with
// their passwords and TOTP secrets) in --dir, so they survive restarts,
// and prints how to sign in.
//
//	go run ./hack/oidc-provider --dir bin/oidc --addr 127.0.0.1:15556 \
//	    --redirect-uri https://127.0.0.1:18443/auth/callback
//
// With --authentication-config FILE it also writes kube-apiserver's
// structured authentication configuration for itself (from
// config/console/authentication-config.yaml); with --users it prints the
// users of --dir and exits (hack/dev.sh does both).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/kubepim/kubepim/test/oidcprovider"
)

type state struct {
	ClientSecret string              `json:"clientSecret"`
	Users        []oidcprovider.User `json:"users"`
}

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	var dir, addr, clientID, authnConfig, authnTemplate string
	var users bool
	var redirects, logouts list
	flag.StringVar(&dir, "dir", "bin/oidc", "Directory for the CA, the serving certificate and users.json.")
	flag.StringVar(&addr, "addr", "127.0.0.1:15556", "Address to listen on (loopback).")
	flag.StringVar(&clientID, "client-id", "kubepim-console", "The client's ID (the ID tokens' audience).")
	flag.Var(&redirects, "redirect-uri", "A redirect URI the client may use (repeat).")
	flag.Var(&logouts, "post-logout-redirect-uri", "A post-logout redirect URI the client may use (repeat).")
	flag.StringVar(&authnConfig, "authentication-config", "", "Write kube-apiserver's structured authentication configuration for this provider to this file.")
	flag.StringVar(&authnTemplate, "authentication-config-template", "config/console/authentication-config.yaml", "The configuration --authentication-config fills in.")
	flag.BoolVar(&users, "users", false, "Print the users of --dir (making them when missing) and exit.")
	flag.Parse()
	if users {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			fmt.Fprintln(os.Stderr, "oidc-provider:", err)
			os.Exit(1)
		}
		st, err := loadState(filepath.Join(dir, "users.json"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "oidc-provider:", err)
			os.Exit(1)
		}
		printUsers(st)
		return
	}
	if err := run(dir, addr, clientID, authnConfig, authnTemplate, redirects, logouts); err != nil {
		fmt.Fprintln(os.Stderr, "oidc-provider:", err)
		os.Exit(1)
	}
}

func run(dir, addr, clientID, authnConfig, authnTemplate string, redirects, logouts []string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	st, err := loadState(filepath.Join(dir, "users.json"))
	if err != nil {
		return err
	}
	// The CA is kept: kube-apiserver's authentication configuration
	// names it.
	ca, err := oidcprovider.LoadOrCreateCA(dir, "kubepim dev OpenID provider CA")
	if err != nil {
		return err
	}
	p, err := oidcprovider.Start(oidcprovider.Options{Addr: addr, Dir: dir, CA: ca, ClientID: clientID, ClientSecret: st.ClientSecret,
		Users: st.Users, RedirectURIs: redirects, PostLogoutRedirectURIs: logouts})
	if err != nil {
		return err
	}
	defer p.Stop()
	if err := os.WriteFile(filepath.Join(dir, "client-secret"), []byte(st.ClientSecret), 0o600); err != nil {
		return err
	}
	if authnConfig != "" {
		template, err := os.ReadFile(authnTemplate)
		if err != nil {
			return err
		}
		out, err := oidcprovider.AuthenticationConfig(template, p.Issuer, clientID, ca.CertPEM)
		if err != nil {
			return err
		}
		if err := os.WriteFile(authnConfig+".tmp", out, 0o600); err != nil {
			return err
		}
		if err := os.Rename(authnConfig+".tmp", authnConfig); err != nil {
			return err
		}
	}
	fmt.Printf("OpenID provider %s (CA %s), client %s (secret in %s)\n", p.Issuer, p.CAFile, clientID, filepath.Join(dir, "client-secret"))
	printUsers(st)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	return nil
}

// loadState reads the users and the client secret, or makes them.
func loadState(file string) (state, error) {
	var st state
	raw, err := os.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		st.Users = oidcprovider.SampleUsers()
		st.ClientSecret = oidcprovider.SampleUsers()[0].Password + oidcprovider.SampleUsers()[1].Password
		raw, err := json.MarshalIndent(st, "", "  ")
		if err != nil {
			return st, err
		}
		return st, os.WriteFile(file, raw, 0o600)
	case err != nil:
		return st, err
	}
	return st, json.Unmarshal(raw, &st)
}

// printUsers prints each user's password, groups and TOTP URI.
func printUsers(st state) {
	for _, u := range st.Users {
		second := ""
		if u.TOTPSecret != "" {
			second = fmt.Sprintf("  TOTP: otpauth://totp/kubepim-dev:%s?secret=%s&issuer=kubepim-dev", u.Username, u.TOTPSecret)
		}
		fmt.Printf("  %-8s password %s  groups %s%s\n", u.Username, u.Password, groupsShown(u.Groups), second)
	}
}

// groupsShown lists a few groups and counts the rest (erin is in 151,
// to try a session split over several cookies).
func groupsShown(groups []string) string {
	const shown = 4
	if len(groups) <= shown {
		return fmt.Sprint(groups)
	}
	return fmt.Sprintf("%v and %d more", groups[:shown], len(groups)-shown)
}
