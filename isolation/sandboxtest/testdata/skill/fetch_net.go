//go:build !wasip1

package main

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"time"
)

// fetch makes one GET, through the proxy in HTTP_PROXY when there is one (also for
// loopback URLs, which http.ProxyFromEnvironment would send direct).
func fetch(rawURL string) fetched {
	tr := &http.Transport{}
	if p := os.Getenv("HTTP_PROXY"); p != "" {
		pu, err := url.Parse(p)
		if err != nil {
			return fetched{Error: "HTTP_PROXY: " + err.Error()}
		}
		tr.Proxy = http.ProxyURL(pu)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	resp, err := client.Get(rawURL)
	if err != nil {
		return fetched{Error: err.Error()}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	f := fetched{Status: resp.StatusCode, Body: string(body)}
	if err != nil {
		f.Error = err.Error()
	}
	return f
}
