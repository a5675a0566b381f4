package main

import (
	"os"

	"github.com/diffah/diffah/internal/membudget"
)

// The Go heap's soft limit matches the memory budget that bounds what
// hostile input can make diffah allocate (SECURITY.md, "Hostile
// archives: limits").
func init() { membudget.SetProcessLimit(os.Getenv) }
