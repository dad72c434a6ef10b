// Command aksim runs the authentik simulator for demos and manual tests.
// It prints AKSIM_URL=<base URL> as its first line on stdout and serves
// until SIGINT or SIGTERM.
//
//	aksim [-listen 127.0.0.1:0] [-token TOKEN] [-seed seed.json]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/akminio/akminio/internal/aksim"
)

func main() { os.Exit(run()) }

func run() int {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	token := flag.String("token", aksim.DefaultToken, "API token accepted as 'Authorization: Bearer <token>'")
	seedPath := flag.String("seed", "", "JSON file of groups (with parents) and users (with groups) to create")
	flag.Parse()
	logger := log.New(os.Stderr, "aksim: ", log.LstdFlags)

	s := aksim.New(aksim.Options{
		Token:       *token,
		OnViolation: func(err error) { logger.Print(err) },
		Logf:        logger.Printf,
	})
	if *seedPath != "" {
		if err := applySeedFile(s, *seedPath); err != nil {
			logger.Print(err)
			return 78 // EX_CONFIG
		}
	}
	if err := s.Start(*listen); err != nil {
		logger.Print(err)
		return 1
	}
	defer s.Close()
	fmt.Printf("AKSIM_URL=%s\n", s.URL())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return 0
}

func applySeedFile(s *aksim.Server, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("seed file: %w", err)
	}
	defer f.Close()
	seed, err := aksim.ReadSeed(f)
	if err != nil {
		return fmt.Errorf("seed file %s: %w", path, err)
	}
	if err := s.ApplySeed(seed); err != nil {
		return fmt.Errorf("seed file %s: %w", path, err)
	}
	return nil
}
