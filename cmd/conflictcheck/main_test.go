package main

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"help", []string{"--help"}, exitOK},
		{"serve-reference help", []string{"serve-reference", "--help"}, exitOK},
		{"unknown command", []string{"frobnicate"}, exitBadInput},
		{"unknown flag", []string{"serve-reference", "--nope"}, exitBadInput},
		{"unknown fault", []string{"serve-reference", "--fault", "dupe"}, exitBadInput},
		{"stray argument", []string{"serve-reference", "now"}, exitBadInput},
		{"postgres without url", []string{"serve-reference", "--store", "postgres", "--database-url", ""}, exitBadInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := execute(t.Context(), tt.args); got != tt.want {
				t.Errorf("conflictcheck %v exited %d; want %d", tt.args, got, tt.want)
			}
		})
	}
}

func TestServeReferenceServesUntilCancelled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() { done <- execute(ctx, []string{"serve-reference", "--addr", addr}) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/items")
		if err == nil {
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET /items = %d", res.StatusCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve-reference never answered: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit code after shutdown %d; want 0", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve-reference did not shut down")
	}
}
