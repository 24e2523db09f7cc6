// Browser code of /status/{id} (compiled by tsc, served from /assets/status.js after /assets/tus.min.js). The upload
// was created by the UI server with a deferred length; this page sends the file to its tus URL with tus-js-client,
// which asks the server for the offset first (HEAD), so a reload, a pause or a dropped connection resumes where the
// server's bytes end. Then it follows the upload's status and deliveries by polling the page's details fragment.

interface TusUploadLike {
  start(): void;
  abort(): Promise<void>;
}
interface TusOptions {
  uploadUrl: string;
  uploadLengthDeferred: boolean;
  chunkSize: number;
  retryDelays: number[];
  headers: Record<string, string>;
  storeFingerprintForResuming: boolean;
  onProgress(sent: number, total: number | null): void;
  onError(err: Error): void;
  onSuccess(): void;
}
declare const tus: { isSupported: boolean; Upload: new (file: File, options: TusOptions) => TusUploadLike };

(() => {
  const app = document.getElementById('upload-app');
  if (!app) return;
  const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
  const data = app.dataset;
  const uploadUrl = data['uploadUrl']!;
  const detailsUrl = data['detailsUrl']!;
  const storageKey = `dex-upload:${data['uploadId']}`;
  const token = data['token'];

  const fileInput = $<HTMLInputElement>('files');
  const chunkInput = $<HTMLInputElement>('chunksize');
  const progressArea = $('progress-area');
  const progress = $<HTMLProgressElement>('progress');
  const progressText = $('progress-text');
  const pauseButton = $<HTMLButtonElement>('pause-upload-button');
  const resumeButton = $<HTMLButtonElement>('resume-upload-button');
  const errorBox = $('upload-error');
  const announcer = $('announcer');
  const details = $('details');

  let upload: TusUploadLike | undefined;
  let file: File | undefined;
  let samples: Array<{ t: number; bytes: number }> = [];
  let lastAnnounced = -1;

  const formatBytes = (n: number) => {
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let v = n;
    let i = 0;
    while (v >= 1000 && i < units.length - 1) {
      v /= 1000;
      i++;
    }
    return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
  };
  const announce = (text: string) => {
    announcer.textContent = text;
  };
  const showError = (text: string | null) => {
    errorBox.hidden = text === null;
    errorBox.textContent = text ?? '';
  };

  if (!tus.isSupported) {
    $('support-alert').hidden = false;
    fileInput.disabled = true;
    return followDetails();
  }

  // The file this upload was started with, so that a resume after a reload is refused for another file.
  type Remembered = { name: string; size: number; lastModified: number };
  const remembered = (): Remembered | undefined => {
    try {
      return JSON.parse(localStorage.getItem(storageKey) ?? 'null') ?? undefined;
    } catch {
      return undefined;
    }
  };
  const remember = (f: File) => {
    try {
      localStorage.setItem(storageKey, JSON.stringify({ name: f.name, size: f.size, lastModified: f.lastModified }));
    } catch {
      /* private mode: resuming still works, only without the same-file check */
    }
  };
  const before = remembered();
  if (before && data['status'] === 'In Progress') {
    $('uploader-intro').textContent += ` You started with ${before.name} (${formatBytes(before.size)}).`;
  }

  const setProgress = (sent: number, total: number) => {
    const pct = total > 0 ? Math.floor((sent / total) * 100) : 100;
    const now = performance.now();
    samples.push({ t: now, bytes: sent });
    while (samples.length > 2 && now - samples[0]!.t > 3000) samples.shift();
    const first = samples[0]!;
    const seconds = (now - first.t) / 1000;
    const speed = seconds > 0 ? (sent - first.bytes) / seconds : 0;
    progress.value = pct;
    progress.textContent = `${pct}%`;
    progressText.textContent = `${pct}% · ${formatBytes(sent)} of ${formatBytes(total)}${speed > 0 ? ` · ${formatBytes(speed)}/s` : ''}`;
    // Screen readers hear every 10 %, not every progress event.
    const step = Math.floor(pct / 10);
    if (step !== lastAnnounced) {
      lastAnnounced = step;
      announce(`Upload ${pct}% done`);
    }
  };

  const start = () => {
    if (!file) return;
    const chunkSize = Number.parseInt(chunkInput.value, 10);
    const f = file;
    samples = [];
    upload = new tus.Upload(f, {
      uploadUrl,
      uploadLengthDeferred: true,
      chunkSize: Number.isSafeInteger(chunkSize) && chunkSize > 0 ? chunkSize : Number.POSITIVE_INFINITY,
      retryDelays: [0, 1000, 3000, 5000],
      headers: token ? { Authorization: `Bearer ${token}` } : {},
      // The upload URL is known from the page; tus-js-client need not keep one of its own.
      storeFingerprintForResuming: false,
      onProgress: (sent) => setProgress(sent, f.size),
      onError: (err) => {
        pauseButton.disabled = true;
        resumeButton.disabled = false;
        showError(`The upload stopped: ${err.message}. Press Resume to try again.`);
      },
      onSuccess: () => {
        setProgress(f.size, f.size);
        try {
          localStorage.removeItem(storageKey);
        } catch {
          /* nothing kept */
        }
        // Nothing left to choose or control: the picker and the buttons go, the full bar stays.
        $('picker').hidden = true;
        $('upload-buttons').hidden = true;
        $('uploader-intro').textContent = `${f.name} was uploaded.`;
        announce('Upload complete');
        $('page-title').textContent = 'Upload Complete';
        void refreshDetails();
      },
    });
    showError(null);
    pauseButton.disabled = false;
    resumeButton.disabled = true;
    upload.start();
  };

  fileInput.addEventListener('change', () => {
    const chosen = fileInput.files?.[0];
    if (!chosen) return;
    const prev = remembered();
    const received = Number(data['received'] ?? 0);
    if (prev && (prev.name !== chosen.name || prev.size !== chosen.size || prev.lastModified !== chosen.lastModified)) {
      showError(`This upload was started with ${prev.name} (${formatBytes(prev.size)}). Choose that file to continue.`);
      return;
    }
    if (chosen.size < received) {
      showError(`The server already has ${formatBytes(received)} of this upload, more than ${chosen.name} holds. Choose the file you started with.`);
      return;
    }
    file = chosen;
    remember(chosen);
    fileInput.disabled = true;
    progressArea.hidden = false;
    setProgress(received, chosen.size);
    start();
  });

  pauseButton.addEventListener('click', () => {
    if (!upload) return;
    void upload.abort();
    pauseButton.disabled = true;
    resumeButton.disabled = false;
    announce('Upload paused');
    resumeButton.focus();
  });
  resumeButton.addEventListener('click', () => {
    announce('Upload resumed');
    start();
    pauseButton.focus();
  });

  followDetails();

  async function refreshDetails(): Promise<string | undefined> {
    try {
      const res = await fetch(detailsUrl, { credentials: 'same-origin', headers: { Accept: 'text/html' } });
      if (!res.ok) return undefined;
      const fragment = await res.text();
      const shown = details.firstElementChild as HTMLElement | null;
      if (shown && shown.outerHTML === fragment.trim()) return shown.dataset['status'];
      const old = shown?.dataset ?? {};
      details.innerHTML = fragment;
      const now = (details.firstElementChild as HTMLElement | null)?.dataset ?? {};
      if (now['status'] !== old['status']) announce(`Upload status: ${now['status']}`);
      else if (now['deliveries'] !== old['deliveries']) announce('Delivery status updated');
      return now['status'];
    } catch {
      return undefined;
    }
  }

  /** Polls every 2 s until the upload is complete and its deliveries have stayed the same for a minute. */
  function followDetails(): void {
    let quietPolls = 0;
    let lastDeliveries: string | undefined;
    const tick = async () => {
      const status = await refreshDetails();
      const deliveries = (details.firstElementChild as HTMLElement | null)?.dataset['deliveries'] ?? '';
      if (status === 'Complete' && deliveries !== '' && deliveries === lastDeliveries) quietPolls++;
      else quietPolls = 0;
      lastDeliveries = deliveries;
      if (quietPolls < 30) setTimeout(() => void tick(), 2000);
    };
    setTimeout(() => void tick(), 2000);
  }
})();
