// Package e2e drives the real server and the real browser front end with
// headless Chromium (chromedp): two people join a room, see and hear each
// other, chat, survive a signaling outage, and a third is turned away from
// a full room. The tests live in _test files; this package has no API.
package e2e
