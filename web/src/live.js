// The event stream (/station/stream/), kept open.
//
// EventSource reconnects by itself after a dropped connection, sending the last id it saw as
// Last-Event-ID, and the server replays what was missed. But when an answer is not a stream
// (a 503 while the server starts or is full, a 401, a proxy's error page) the EventSource
// gives up for good (readyState CLOSED). Then a new one is opened here, after a growing
// pause, carrying the last id seen as ?last_event_id= so nothing committed meanwhile is lost,
// also across a server restart.

const EVENT_TYPES = ['created', 'updated', 'deleted', 'reset'];
const FIRST_RETRY_MS = 1000;
const LONGEST_RETRY_MS = 15000;

export class LiveStream {
  // onEvent(type, data); onOpen({resumed}): resumed is false when events may have been
  // missed (no id seen yet), so the caller must re-read; onState('connecting'|'open'|'lost').
  constructor(path, { onEvent, onOpen, onState }) {
    this.path = path;
    this.onEvent = onEvent;
    this.onOpen = onOpen;
    this.onState = onState;
    this.lastId = null;
    this.source = null;
    this.failures = 0;
    this.timer = null;
  }

  start() {
    this.connect();
  }

  connect() {
    this.timer = null;
    const url = this.lastId === null ? this.path : `${this.path}?last_event_id=${encodeURIComponent(this.lastId)}`;
    // withCredentials is about cross-origin requests; a same-origin EventSource sends the
    // page's Basic credentials anyway.
    const source = new EventSource(url);
    this.source = source;
    // Whether this connection (or its own automatic reconnection) knows where to resume.
    source.addEventListener('open', () => {
      this.failures = 0;
      this.onState('open');
      this.onOpen({ resumed: this.lastId !== null });
    });
    source.addEventListener('error', () => {
      if (source !== this.source) return;
      this.onState('lost');
      if (source.readyState === EventSource.CLOSED) this.retryLater();
    });
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (event) => {
        if (source !== this.source) return;
        // Kept before the event is handled, so a handler's bug cannot make us replay it forever.
        if (event.lastEventId) this.lastId = event.lastEventId;
        let data;
        try {
          data = JSON.parse(event.data);
        } catch {
          console.warn(`station-api: ignored a ${type} event whose data is not JSON`);
          return;
        }
        this.onEvent(type, data);
      });
    }
  }

  retryLater() {
    this.source?.close();
    if (this.timer !== null) return;
    // Doubling, capped, with jitter so that a restarted server is not met by every page at
    // the same instant.
    const ceiling = Math.min(LONGEST_RETRY_MS, FIRST_RETRY_MS * 2 ** this.failures);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.failures += 1;
    this.timer = setTimeout(() => this.connect(), delay);
  }
}
