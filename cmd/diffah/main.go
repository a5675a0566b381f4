// Command diffah ships container images as deltas: only what the receiving
// site lacks travels, and the site rebuilds the new image byte for byte.
// This package holds flags, stdio and printing only; the work is done by
// deliver (the commands' orchestration) and the plan, pack, unpack and
// resolve packages.
package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"golang.org/x/term"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/internal/cleanup"
	"github.com/diffah/diffah/internal/progress"
)

// CLI is the command tree.
type CLI struct {
	Globals

	Plan    PlanCmd    `cmd:"" help:"Compute a delta plan (JSON on stdout)."`
	Pack    PackCmd    `cmd:"" help:"Stream a delta archive from one or more plans."`
	Unpack  UnpackCmd  `cmd:"" help:"Read a delta archive into a partial OCI layout, verifying as it streams."`
	Resolve ResolveCmd `cmd:"" help:"Complete an unpacked layout from the baseline and verify every digest."`
	Export  ExportCmd  `cmd:"" help:"Plan and pack in one step."`
	Import  ImportCmd  `cmd:"" help:"Unpack and resolve in one step, writing the rebuilt image(s)."`
	Inspect InspectCmd `cmd:"" help:"Describe a plan or a delta archive."`
	Diff    DiffCmd    `cmd:"" help:"Compare two images file by file (exit 1 when they differ)."`
	Keygen  KeygenCmd  `cmd:"" help:"Write an ECDSA P-256 key pair for signing archives."`
	Version VersionCmd `cmd:"" help:"Print the diffah version."`
}

// Globals are flags every command takes.
type Globals struct {
	LogLevel  string `help:"Log level: debug, info, warn, error (default: ${default})." default:"warn" enum:"debug,info,warn,error" placeholder:"LEVEL"`
	LogFormat string `help:"Log format on stderr: text or json (default: ${default})." default:"text" enum:"text,json" placeholder:"FORMAT"`
	Quiet     bool   `short:"q" help:"Only errors on stderr; no progress."`

	log *slog.Logger
	ctx context.Context
	// jsonLog: stderr carries JSON records only (--log-format json).
	jsonLog bool
}

// Registry flags shared by commands that read or write images.
type RegistryFlags struct {
	Insecure   bool          `help:"Allow plain HTTP and unverified TLS for docker:// references (loopback registries are always allowed plain HTTP)."`
	RetryTimes int           `help:"Retries on transient registry errors (default: ${default})." default:"3" placeholder:"N"`
	RetryDelay time.Duration `help:"First retry delay; doubles each retry (default: ${default})." default:"1s" placeholder:"DURATION"`
	Timeout    time.Duration `help:"Fail when a registry connection stays idle (nothing read or written) this long; a stall is exit 3 naming the reference (default: ${default})." default:"60s" placeholder:"DURATION"`
}

// Validate refuses a non-positive --timeout: there is no "wait forever".
func (r RegistryFlags) Validate() error {
	if r.Timeout <= 0 {
		return fault.WithHint(fault.Errorf(fault.Usage, "--timeout %s: must be positive", r.Timeout), fault.Usage,
			"give how long a silent registry connection may last, e.g. --timeout 5m")
	}
	return nil
}

func (r RegistryFlags) options(platform string) imgref.Options {
	return imgref.Options{Platform: platform, Insecure: r.Insecure, RetryTimes: r.RetryTimes, RetryDelay: r.RetryDelay, Timeout: r.Timeout, Logger: slog.Default()}
}

// commonExamples shows, in every command's help, the flags every command
// takes (and those of commands that reach registries).
func commonExamples(cmd string, registry bool) string {
	s := "\n\nFlags every command takes:\n" +
		"  diffah " + cmd + " --log-level debug --log-format json ...   structured logs on stderr\n" +
		"  diffah " + cmd + " --quiet ...   (-q) errors only, no progress"
	if registry {
		s += "\n  diffah " + cmd + " --insecure --retry-times 5 --retry-delay 2s ...   plain-HTTP registry, more patient retries" +
			"\n  diffah " + cmd + " --timeout 5m ...   wait up to 5 minutes for a silent registry connection (default 60s)"
	}
	return s
}

// progressTo returns where progress is drawn: stderr when it is a
// terminal and --quiet is off, else nowhere.
func (g *Globals) progressTo(stderr io.Writer) io.Writer {
	if progress.Enabled(stderr, g.Quiet) {
		return stderr
	}
	return nil
}

var description = helpText("diffah")

// help holds the text of every --help: the description and examples of
// each command (help/COMMAND.txt); TestHelpExamplesRun runs every example.
//
//go:embed help/*.txt
var help embed.FS

func helpText(name string) string {
	b, err := help.ReadFile("help/" + name + ".txt")
	if err != nil {
		panic(err) // embedded at build time: a missing file is a build bug
	}
	return string(b)
}

// memoryLimit is the soft heap limit diffah runs with unless GOMEMLIMIT
// says otherwise. The codec's zstd encoders allocate large match tables
// per file; without a limit the garbage collector lets them pile up, and
// peak memory would follow the number of files instead of staying flat.
const memoryLimit = 384 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	code := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	for _, stop := range stopProfile {
		stop()
	}
	os.Exit(code)
}

// stopProfile ends the profiles a -tags profile build started
// (profile.go); empty otherwise.
var stopProfile []func()

// interruptGrace is how long an interrupted command has to unwind by
// itself (its context is cancelled) before the process cleans up from the
// registry and exits: a read from a stalled pipe or a hung connection may
// never return.
const interruptGrace = 300 * time.Millisecond

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	var cli CLI
	defer func() {
		// A panic is a bug: nothing half-written stays, and it is reported
		// as such (exit 70), with the stack only when asked for.
		if r := recover(); r != nil {
			err := fault.Panic(r, debug.Stack())
			cleanup.Run()
			code = fault.Report(stderr, err, cli.LogFormat == "json", cli.LogLevel == "debug")
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// One download of each registry layer per command.
	ctx, release := imgref.WithBlobCache(ctx)
	defer release()
	done := make(chan struct{})
	defer close(done)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var jsonLog atomic.Bool
	go onSignal(sigs, done, cancel, stderr, &jsonLog)
	exited := false
	parser, err := kong.New(&cli,
		kong.Name("diffah"),
		kong.Description(description),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Writers(stdout, stderr),
		kong.Exit(func(c int) { exited = true; code = c }),
		kong.Bind(stdio{in: stdin, out: stdout, err: stderr}),
	)
	if err != nil {
		fmt.Fprintf(stderr, "diffah: %v\n", err)
		return int(fault.Internal)
	}
	kctx, err := parser.Parse(args)
	if exited {
		return code
	}
	if err != nil {
		fmt.Fprintf(stderr, "diffah: %v\n", err)
		var pe *kong.ParseError
		if errors.As(err, &pe) {
			fmt.Fprintf(stderr, "hint: run `diffah %s --help` for usage and examples\n", commandPath(pe.Context))
		}
		return int(fault.Usage)
	}
	level := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}[cli.LogLevel]
	if cli.Quiet {
		level = slog.LevelError
	}
	hopts := &slog.HandlerOptions{Level: level}
	if cli.LogFormat == "json" {
		cli.log = slog.New(slog.NewJSONHandler(stderr, hopts))
	} else {
		cli.log = slog.New(slog.NewTextHandler(stderr, hopts))
	}
	cli.ctx = ctx
	cli.jsonLog = cli.LogFormat == "json"
	jsonLog.Store(cli.jsonLog)
	slog.SetDefault(cli.log)
	err = kctx.Run(&cli.Globals)
	if err == nil {
		return 0
	}
	return fault.Report(stderr, err, cli.LogFormat == "json", cli.LogLevel == "debug")
}

// onSignal cancels the command on SIGINT/SIGTERM and gives it
// interruptGrace to unwind; then (or at a second signal) it removes every
// registered temporary output and lock and exits 130 itself.
func onSignal(sigs <-chan os.Signal, done <-chan struct{}, cancel func(), stderr io.Writer, jsonLog *atomic.Bool) {
	select {
	case <-done:
		return
	case <-sigs:
	}
	cancel()
	t := time.NewTimer(interruptGrace)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-sigs:
	case <-t.C:
	}
	cleanup.Run()
	fault.Report(stderr, context.Canceled, jsonLog.Load(), false)
	os.Exit(130)
}

func commandPath(c *kong.Context) string {
	if c == nil {
		return ""
	}
	return strings.TrimPrefix(c.Command(), "diffah ")
}

type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// refuseTerminal stops binary output from spilling onto a terminal.
func refuseTerminal(w io.Writer, what string) error {
	if isTerminal(w) {
		return fault.WithHint(fault.Errorf(fault.Usage, "refusing to write %s to a terminal", what), fault.Usage,
			"use -o FILE or redirect stdout (> file, | ...)")
	}
	return nil
}
