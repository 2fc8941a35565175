/**
 * Background jobs (tile, predict, rank, train): polled every 2 s (EventSource cannot send
 * the bearer token), shown with their progress and a cancel button; predict and rank can
 * be started for the open slide. `onFinished` hears of each job that ends while watched.
 */
import type { SiteApi } from "./api/client";
import type { Job, JobKind } from "./api/types";
import { button, el, formatTime } from "./dom";
import { describe, notify, track } from "./status";

const POLL_MS = 2000;
const SHOWN = 8;
const ACTIVE = new Set<Job["state"]>(["queued", "running"]);

export class JobsPanel {
  onFinished: (job: Job) => void = () => undefined;
  private known = new Map<string, Job["state"]>();
  private timer: number | undefined;
  private polling = false;

  constructor(private readonly api: SiteApi, private readonly list: HTMLElement) {}

  start(): void {
    void this.poll();
    this.timer = window.setInterval(() => void this.poll(), POLL_MS);
  }

  stop(): void {
    window.clearInterval(this.timer);
  }

  async run(kind: JobKind, slideId: number | null): Promise<void> {
    try {
      const job = await track(this.api.startJob(kind, slideId));
      notify(`Started ${job.kind} (${job.id})`);
      await this.poll();
    } catch (error) {
      notify(`Cannot start ${kind}: ${describe(error)}`, "error");
    }
  }

  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const jobs = await this.api.jobs();
      for (const job of jobs) {
        const before = this.known.get(job.id);
        if (before && ACTIVE.has(before) && !ACTIVE.has(job.state)) this.onFinished(job);
        this.known.set(job.id, job.state);
      }
      this.render(jobs);
    } catch {
      // a failed poll is retried in 2 s; 401s are reported by the client
    } finally {
      this.polling = false;
    }
  }

  private render(jobs: Job[]): void {
    const newest = [...jobs].sort((a, b) => b.created_at.localeCompare(a.created_at)).slice(0, SHOWN);
    this.list.replaceChildren(...newest.map((job) => this.row(job)));
    if (newest.length === 0) this.list.append(el("li", { class: "empty" }, "No jobs yet."));
  }

  private row(job: Job): HTMLElement {
    const progress = el("progress", { max: Math.max(1, job.total), value: job.done });
    if (job.total === 0 && job.state === "running") progress.removeAttribute("value");
    const cancel = ACTIVE.has(job.state)
      ? button("✕", `cancel-job-${job.id}`, () => void this.cancel(job), `Cancel this ${job.kind} job`)
      : null;
    const text = job.error ? `${job.message} — ${job.error}` : job.message;
    return el("li", { class: `job ${job.state}`, "data-testid": "job", "data-job-id": job.id, "data-state": job.state },
      el("div", { class: "job-head" },
        el("span", { class: "job-kind" }, job.kind + (job.slide_id !== null ? ` · slide ${job.slide_id}` : "")),
        el("span", { class: `badge ${job.state}` }, job.state),
        el("span", { class: "job-count" }, job.total ? `${job.done}/${job.total}` : ""),
        cancel),
      progress,
      el("div", { class: "job-message", title: `${text} (${formatTime(job.created_at)})` }, text || " "));
  }

  private async cancel(job: Job): Promise<void> {
    try {
      await track(this.api.cancelJob(job.id));
      await this.poll();
    } catch (error) {
      notify(`Cannot cancel ${job.kind}: ${describe(error)}`, "error");
    }
  }
}
