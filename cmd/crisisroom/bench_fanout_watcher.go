package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// watcher is one map subscriber: a minimal RFC 6455 client, so that 5,000
// of them cost the load generator little (one goroutine, a 2 KiB read
// buffer, a cheap scan of each delta instead of a JSON decode).
type watcher struct {
	run  *fanoutRun
	inst int // index of the instance it is connected to
	c    net.Conn
	br   *bufio.Reader
	buf  []byte  // message being read
	got  []int64 // receipt time of declaration i, 0 = not yet
	n    int     // receipts so far
	seq  uint64
}

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// dial connects, subscribes and reads the snapshot, which stays valid
// until the watcher reads again.
func (run *fanoutRun) dial(ctx context.Context, id int) (*watcher, []byte, error) {
	inst := id % len(run.wsURLs)
	u, err := url.Parse(run.wsURLs[inst])
	if err != nil {
		return nil, nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, nil, err
	}
	w := &watcher{run: run, inst: inst, c: c, br: bufio.NewReaderSize(c, 2048)}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	snap, err := w.handshake(u, id)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return w, snap, nil
}

func (w *watcher) handshake(u *url.URL, id int) ([]byte, error) {
	k := make([]byte, 16)
	_, _ = rand.Read(k)
	key := base64.StdEncoding.EncodeToString(k)
	req := "GET " + u.Path + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(w.c, req); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(w.br, nil)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	sum := sha1.Sum([]byte(key + wsGUID))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		return nil, fmt.Errorf("websocket handshake: %s", resp.Status)
	}
	sub, _ := json.Marshal(map[string]any{"v": 1, "type": "subscribe", "id": strconv.Itoa(id),
		"data": map[string]string{"topic": "map", "token": w.run.opts.token}})
	if err := w.send(0x1, sub); err != nil {
		return nil, err
	}
	for {
		op, p, err := w.next()
		if err != nil {
			return nil, err
		}
		if op != 0x1 {
			continue
		}
		typ := msgType(p)
		if typ == "error" {
			return nil, fmt.Errorf("subscribe refused: %.200s", p)
		}
		if typ != "map-snapshot" {
			continue
		}
		w.seq, _ = scanUint(p, `"seq":`)
		w.got = make([]int64, w.run.opts.decls)
		return p, nil
	}
}

// start runs the watcher's reader.
func (run *fanoutRun) start(w *watcher) {
	run.readers.Add(1)
	go func() {
		defer run.readers.Done()
		w.read()
	}()
}

func (w *watcher) read() {
	run := w.run
	complete := false
	defer func() {
		if !complete {
			run.finished()
		}
	}()
	for {
		op, p, err := w.next()
		if err != nil {
			return // closed by us at the end, or by the server (counted in next)
		}
		if op != 0x1 {
			continue
		}
		w.message(p)
		if !complete && w.n == run.opts.decls {
			complete = true
			run.finished()
		}
	}
}

func (run *fanoutRun) finished() {
	if run.pending.Add(-1) == 0 {
		run.doneOnce.Do(func() { close(run.allDone) })
	}
}

// message handles one map frame: a delta must follow the last seq; a gap
// asks for a snapshot, as the real client does.
func (w *watcher) message(p []byte) {
	switch msgType(p) {
	case "map-delta":
		seq, _ := scanUint(p, `"seq":`)
		if seq <= w.seq {
			return // already in the snapshot we have
		}
		if seq != w.seq+1 {
			w.run.gaps.Add(1)
			_ = w.send(0x1, []byte(`{"v":1,"type":"resync","data":{"topic":"map"}}`))
		}
		w.seq = seq
	case "map-snapshot":
		w.seq, _ = scanUint(p, `"seq":`)
	default:
		return
	}
	now := int64(time.Since(w.run.base))
	for off := 0; ; {
		i := bytes.Index(p[off:], []byte(`{"code":"`))
		if i < 0 {
			return
		}
		off += i + len(`{"code":"`)
		end := bytes.IndexByte(p[off:], '"')
		if end < 0 {
			return
		}
		code := p[off : off+end]
		off += end
		idx, ok := w.run.index[string(code)] // no allocation: map lookup by converted key
		if !ok || w.got[idx] != 0 {
			continue
		}
		if total, ok := scanUint(p[off:], `"total":`); ok && int(total) > w.run.baseline[idx] {
			w.got[idx] = max(now, 1)
			w.n++
		}
	}
}

// next reads one whole message (continuation frames joined) and answers
// pings. It returns the opcode of the message and its payload, valid
// until the next call.
func (w *watcher) next() (byte, []byte, error) {
	w.buf = w.buf[:0]
	var op byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(w.br, h[:]); err != nil {
			return 0, nil, err
		}
		fin, code := h[0]&0x80 != 0, h[0]&0x0f
		n := int64(h[1] & 0x7f)
		switch n {
		case 126:
			var e [2]byte
			if _, err := io.ReadFull(w.br, e[:]); err != nil {
				return 0, nil, err
			}
			n = int64(binary.BigEndian.Uint16(e[:]))
		case 127:
			var e [8]byte
			if _, err := io.ReadFull(w.br, e[:]); err != nil {
				return 0, nil, err
			}
			n = int64(binary.BigEndian.Uint64(e[:]))
		}
		if n < 0 || n > 16<<20 {
			return 0, nil, fmt.Errorf("frame of %d bytes", n)
		}
		if code >= 0x8 { // control frame, possibly between fragments
			var ctl [125]byte
			if n > 125 {
				return 0, nil, errors.New("oversized control frame")
			}
			if _, err := io.ReadFull(w.br, ctl[:n]); err != nil {
				return 0, nil, err
			}
			switch code {
			case 0x8:
				w.run.closed.Add(1)
				return 0, nil, fmt.Errorf("closed by the server: %q", ctl[:n])
			case 0x9:
				if err := w.send(0xA, ctl[:n]); err != nil {
					return 0, nil, err
				}
			}
			continue
		}
		if code != 0 {
			op = code
		}
		start := len(w.buf)
		w.buf = slices.Grow(w.buf, int(n))[:start+int(n)]
		if _, err := io.ReadFull(w.br, w.buf[start:]); err != nil {
			return 0, nil, err
		}
		if fin {
			p := w.buf
			if cap(w.buf) > 4<<10 {
				w.buf = nil // a snapshot: do not keep tens of KiB per watcher
			}
			return op, p, nil
		}
	}
}

// send writes one masked frame (clients must mask). Only the reader
// goroutine writes after the handshake.
func (w *watcher) send(op byte, p []byte) error {
	f := make([]byte, 0, 14+len(p))
	f = append(f, 0x80|op)
	switch {
	case len(p) < 126:
		f = append(f, 0x80|byte(len(p)))
	case len(p) <= 0xffff:
		f = append(f, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(len(p)))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(len(p)))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	f = append(f, mask[:]...)
	for i, b := range p {
		f = append(f, b^mask[i&3])
	}
	_, err := w.c.Write(f)
	return err
}

// msgType returns the envelope's type (protocol.Encode puts it first).
func msgType(p []byte) string {
	i := bytes.Index(p, []byte(`"type":"`))
	if i < 0 || i > 32 {
		return ""
	}
	p = p[i+len(`"type":"`):]
	j := bytes.IndexByte(p, '"')
	if j < 0 {
		return ""
	}
	switch string(p[:j]) { // constant strings: no allocation
	case "map-delta":
		return "map-delta"
	case "map-snapshot":
		return "map-snapshot"
	case "error":
		return "error"
	}
	return "other"
}

// scanUint finds key and parses the digits after it.
func scanUint(p []byte, key string) (uint64, bool) {
	i := bytes.Index(p, []byte(key))
	if i < 0 {
		return 0, false
	}
	var v uint64
	j := i + len(key)
	for ; j < len(p) && p[j] >= '0' && p[j] <= '9'; j++ {
		v = v*10 + uint64(p[j]-'0')
	}
	return v, j > i+len(key)
}
