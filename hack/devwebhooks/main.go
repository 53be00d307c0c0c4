// Command devwebhooks rewrites the generated webhook configurations
// (config/webhook/manifests.yaml) for a manager that runs outside the
// cluster: every clientConfig.service becomes clientConfig.url
// https://<host>:<port><path>, with the dev CA as caBundle. hack/dev.sh pipes
// its output into kubectl apply.
//
//	devwebhooks -in config/webhook/manifests.yaml -ca bin/dev/pki/ca.crt \
//	            -host 127.0.0.1 -port 19443 -name-prefix kubepim-
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"
)

func main() {
	in := flag.String("in", "config/webhook/manifests.yaml", "generated webhook configurations")
	caFile := flag.String("ca", "bin/dev/pki/ca.crt", "PEM CA bundle that signed the webhook server's certificate")
	host := flag.String("host", "127.0.0.1", "host the webhook server listens on")
	port := flag.Int("port", 19443, "port the webhook server listens on")
	prefix := flag.String("name-prefix", "kubepim-", "prefix for the configurations' names (as config/default's namePrefix)")
	flag.Parse()
	if err := run(*in, *caFile, *host, *port, *prefix); err != nil {
		fmt.Fprintln(os.Stderr, "devwebhooks:", err)
		os.Exit(1)
	}
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

func run(in, caFile, host string, port int, prefix string) error {
	data, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	base := "https://" + net.JoinHostPort(host, strconv.Itoa(port))
	rewrite := func(c *admissionv1.WebhookClientConfig) error {
		if c.Service == nil {
			return errors.New("webhook has no clientConfig.service")
		}
		path := ""
		if c.Service.Path != nil {
			path = *c.Service.Path
		}
		url := base + path
		c.URL, c.Service, c.CABundle = &url, nil, ca
		return nil
	}
	var out bytes.Buffer
	for _, doc := range docSeparator.Split(string(data), -1) {
		if len(bytes.TrimSpace([]byte(doc))) == 0 {
			continue
		}
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			return fmt.Errorf("%s: %w", in, err)
		}
		var obj any
		switch meta.Kind {
		case "MutatingWebhookConfiguration":
			var c admissionv1.MutatingWebhookConfiguration
			if err := yaml.UnmarshalStrict([]byte(doc), &c); err != nil {
				return fmt.Errorf("%s: %w", in, err)
			}
			for i := range c.Webhooks {
				if err := rewrite(&c.Webhooks[i].ClientConfig); err != nil {
					return fmt.Errorf("%s: %w", c.Webhooks[i].Name, err)
				}
			}
			c.Name = prefix + c.Name
			obj = &c
		case "ValidatingWebhookConfiguration":
			var c admissionv1.ValidatingWebhookConfiguration
			if err := yaml.UnmarshalStrict([]byte(doc), &c); err != nil {
				return fmt.Errorf("%s: %w", in, err)
			}
			for i := range c.Webhooks {
				if err := rewrite(&c.Webhooks[i].ClientConfig); err != nil {
					return fmt.Errorf("%s: %w", c.Webhooks[i].Name, err)
				}
			}
			c.Name = prefix + c.Name
			obj = &c
		default:
			return fmt.Errorf("%s: unexpected kind %q", in, meta.Kind)
		}
		y, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		out.WriteString("---\n")
		out.Write(y)
	}
	if out.Len() == 0 {
		return fmt.Errorf("%s: no webhook configurations", in)
	}
	_, err = os.Stdout.Write(out.Bytes())
	return err
}
