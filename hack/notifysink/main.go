// Command notifysink receives kubepim's notifications on a developer's
// machine: it captures webhook posts (JSON, Slack, Teams) on an HTTP port
// and mail on an SMTP port, and prints each as it arrives.
//
//	go run ./hack/notifysink -http 127.0.0.1:18090 -smtp 127.0.0.1:12525
//
// See docs/notifications.md for a walkthrough on `make dev-up`.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/kubepim/kubepim/test/notifysink"
)

func main() {
	httpAddr := flag.String("http", "127.0.0.1:18090", "Address of the webhook receiver.")
	smtpAddr := flag.String("smtp", "127.0.0.1:12525", "Address of the SMTP server (plain text: security None in the channel).")
	flag.Parse()

	web, err := notifysink.NewHTTPOn(*httpAddr)
	if err != nil {
		log.Fatal(err)
	}
	defer web.Close()
	mail, err := notifysink.NewSMTP(*smtpAddr, false, "", "")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = mail.Close() }()
	fmt.Printf("webhooks: POST http://%s/<anything>   mail: smtp://%s\n", *httpAddr, mail.Addr)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var posts, mails int
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		all := web.Posts("")
		for _, p := range all[posts:] {
			fmt.Printf("--- POST %s (%s)\n%s\n", p.Path, p.Header.Get("X-Kubepim-Notification"), p.Body)
		}
		posts = len(all)
		got := mail.Mails("")
		for _, m := range got[mails:] {
			msg, err := m.Parse()
			if err != nil {
				fmt.Printf("--- MAIL to %s (unreadable: %v)\n", m.To, err)
				continue
			}
			fmt.Printf("--- MAIL to %s: %s\n%s\n", m.To, msg.Subject, msg.Body)
		}
		mails = len(got)
	}
}
