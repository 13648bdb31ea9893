package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"crisisroom/bus/memory"
	"crisisroom/protocol"
	"crisisroom/rooms"
	"crisisroom/rooms/cluster"
	"crisisroom/store/sqlite"
)

// Short presence timings: the logic is the same at 2 s / 6 s.
const (
	beat = 40 * time.Millisecond
	ttl  = 150 * time.Millisecond
)

// peer is an in-memory rooms.Peer that queues what it is sent.
type peer struct {
	frames chan rooms.Frame
	mu     sync.Mutex
	code   int
}

func newPeer() *peer { return &peer{frames: make(chan rooms.Frame, 256)} }

func (p *peer) Send(f rooms.Frame) { p.frames <- f }

func (p *peer) Close(code int, _ string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.code == 0 {
		p.code = code
	}
}

func (p *peer) closeCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.code
}

// expect waits for the next frame of type typ, skipping others (states
// and presence not under test), and decodes its data into v.
func (p *peer) expect(t *testing.T, typ string, v any) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case f := <-p.frames:
			var env protocol.Envelope
			if err := json.Unmarshal(f.Data, &env); err != nil {
				t.Fatalf("frame %s: %v", f.Data, err)
			}
			if env.Type != typ {
				continue
			}
			if v != nil {
				if err := json.Unmarshal(env.Data, v); err != nil {
					t.Fatalf("frame %s: %v", f.Data, err)
				}
			}
			return
		case <-deadline:
			t.Fatalf("no %s frame within 5s", typ)
		}
	}
}

// none asserts that no frame of type typ is queued.
func (p *peer) none(t *testing.T, typ string) {
	t.Helper()
	for {
		select {
		case f := <-p.frames:
			var env protocol.Envelope
			_ = json.Unmarshal(f.Data, &env)
			if env.Type == typ {
				t.Fatalf("unexpected %s: %s", typ, f.Data)
			}
		default:
			return
		}
	}
}

// hub is one message broker for the test's instances. Publications take
// its lock, so every subscriber sees one order, as with one Redis server
// (the memory bus alone does not order concurrent publishers).
type hub struct {
	mu  sync.Mutex
	bus *memory.Bus
}

var errDown = errors.New("link down (test)")

// link is one instance's connection to the hub. down makes it deaf and
// mute, as a broken connection to Redis; coming back up signals Lost,
// as the Redis bus does once it has re-subscribed.
type link struct {
	h    *hub
	mu   sync.Mutex
	down bool
	feed *feed
}

func (l *link) Publish(ctx context.Context, msg []byte) error {
	if l.isDown() {
		return errDown
	}
	l.h.mu.Lock()
	defer l.h.mu.Unlock()
	return cluster.New(l.h.bus).Publish(ctx, msg)
}

func (l *link) isDown() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.down
}

func (l *link) Subscribe(ctx context.Context) (rooms.ClusterFeed, error) {
	src, err := cluster.New(l.h.bus).Subscribe(ctx)
	if err != nil {
		return nil, err
	}
	f := &feed{src: src, c: make(chan []byte, 256), lost: make(chan struct{}, 1), ended: make(chan struct{})}
	go f.pump(l)
	l.mu.Lock()
	l.feed = f
	l.mu.Unlock()
	return f, nil
}

func (l *link) setDown(down bool) {
	l.mu.Lock()
	l.down = down
	f := l.feed
	l.mu.Unlock()
	if !down {
		f.lost <- struct{}{}
	}
}

// feed forwards the bus subscription, dropping what arrives while down.
type feed struct {
	src   rooms.ClusterFeed
	c     chan []byte
	lost  chan struct{}
	once  sync.Once
	ended chan struct{}
}

func (f *feed) pump(l *link) {
	defer close(f.c)
	for msg := range f.src.C() {
		if l.isDown() {
			continue
		}
		select {
		case f.c <- msg:
		case <-f.ended:
			return
		}
	}
}

func (f *feed) C() <-chan []byte      { return f.c }
func (f *feed) Lost() <-chan struct{} { return f.lost }
func (f *feed) Close()                { f.once.Do(func() { close(f.ended); f.src.Close() }) }

// world is a store and the instances of one cluster.
type world struct {
	t         *testing.T
	st        *sqlite.Store
	hub       *hub
	cfg       rooms.Config
	beat, ttl time.Duration // of the instances started next
}

func newWorld(t *testing.T, capacity int) *world {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rooms.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.CreateRoom(ctx, rooms.RoomInfo{Name: "main", Title: "main", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	b := memory.New()
	t.Cleanup(func() { b.Close() })
	return &world{t: t, st: st, hub: &hub{bus: b}, cfg: rooms.Config{Capacity: capacity, ResumeWindow: time.Minute},
		beat: beat, ttl: ttl}
}

type instance struct {
	name string
	m    *rooms.Manager
	link *link
}

// start adds an instance (its first joins wait a Beat for the others'
// state).
func (w *world) start(name string) *instance {
	w.t.Helper()
	m := rooms.NewManager(w.cfg, w.st, slog.New(slog.DiscardHandler).With("test", name))
	l := &link{h: w.hub}
	if err := m.StartCluster(rooms.ClusterConfig{Link: l, Instance: name, Beat: w.beat, TTL: w.ttl, JoinWait: time.Second}); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(m.Shutdown)
	return &instance{name: name, m: m, link: l}
}

func (w *world) token(role string) string {
	w.t.Helper()
	plain, _, err := rooms.CreateLink(context.Background(), w.st, "main", role, "test", time.Hour, time.Now())
	if err != nil {
		w.t.Fatal(err)
	}
	return plain
}

// member is a joined test client.
type member struct {
	*rooms.Member
	p      *peer
	joined protocol.Joined
}

func (w *world) join(in *instance, name string) *member {
	w.t.Helper()
	mem, err := w.tryJoin(in, name)
	if err != nil {
		w.t.Fatalf("join %s on %s: %v", name, in.name, err)
	}
	return mem
}

func (w *world) tryJoin(in *instance, name string) (*member, error) {
	p := newPeer()
	mem, j, err := in.m.Join(context.Background(), w.token(rooms.RoleHost), name, "1", p)
	if err != nil {
		return nil, err
	}
	p.expect(w.t, protocol.TypeJoined, nil) // the frame echoing j
	return &member{Member: mem, p: p, joined: j}, nil
}

// ids returns the IDs of the room's members as in sees them.
func ids(in *instance, local bool) []string {
	var ps []protocol.PeerInfo
	if local {
		ps = in.m.Members("main")
	} else {
		ps = in.m.ClusterMembers("main")
	}
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func sorted(s ...string) []string {
	sort.Strings(s)
	return s
}

// eventually polls cond (state held by another goroutine with no
// notification to wait on) until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		<-tick.C
	}
	return time.Since(start)
}
