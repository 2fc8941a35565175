/**
 * The site API as the viewer uses it: one typed method per route, over the client that
 * openapi-fetch builds from the generated schema. Every request carries the bearer token;
 * a failed one throws an `ApiError` with the server's `{detail, kind}`.
 */
import createClient, { type Client } from "openapi-fetch";
import type { RleMask } from "../editor/rle";
import type { paths } from "./schema";
import type {
  CorrectionVersion,
  DecisionStored,
  InspectionDecision,
  InspectionItem,
  InspectionItemDetail,
  InspectionSummary,
  InspectionView,
  Job,
  JobKind,
  MaskSource,
  Me,
  PatchStatus,
  SlideDetail,
  SlideSummary,
  WorklistItem,
} from "./types";

export class ApiError extends Error {
  constructor(readonly status: number, readonly kind: string, readonly detail: string) {
    super(detail);
    this.name = "ApiError";
  }

  get unauthorized(): boolean {
    return this.status === 401;
  }

  get conflict(): boolean {
    return this.status === 409;
  }
}

interface Reply<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

async function ok<T>(call: Promise<Reply<T>>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) throw toError(response, error);
  return data as T;
}

function toError(response: Response, error: unknown): ApiError {
  const body = (typeof error === "object" && error !== null ? error : {}) as {
    detail?: unknown;
    kind?: unknown;
  };
  const detail = typeof body.detail === "string" ? body.detail
    : body.detail !== undefined ? JSON.stringify(body.detail)
    : typeof error === "string" && error ? error
    : `${response.status} ${response.statusText}`;
  const kind = typeof body.kind === "string" ? body.kind : "HTTPError";
  return new ApiError(response.status, kind, detail);
}

/** α and γ of an inspection request; null: the run's own. */
export type Weights = { alpha: number | null; gamma: number | null };

function weightQuery({ alpha, gamma }: Weights): { alpha?: number; gamma?: number } {
  return { alpha: alpha ?? undefined, gamma: gamma ?? undefined };
}

export class SiteApi {
  readonly client: Client<paths>;

  /** `onUnauthorized` hears of every 401 (a missing or wrong token). */
  constructor(readonly token: string, onUnauthorized: () => void, baseUrl = window.location.origin) {
    this.client = createClient<paths>({ baseUrl });
    this.client.use({
      onRequest({ request }) {
        request.headers.set("Authorization", `Bearer ${token}`);
        return request;
      },
      onResponse({ response }) {
        if (response.status === 401) onUnauthorized();
        return response;
      },
    });
  }

  /** The headers OpenSeadragon sends with every tile. */
  get authHeaders(): Record<string, string> {
    return { Authorization: `Bearer ${this.token}` };
  }

  me(): Promise<Me> {
    return ok(this.client.GET("/api/me"));
  }

  slides(): Promise<SlideSummary[]> {
    return ok(this.client.GET("/api/slides"));
  }

  slide(slideId: number): Promise<SlideDetail> {
    return ok(this.client.GET("/api/slides/{slide_id}", { params: { path: { slide_id: slideId } } }));
  }

  worklist(slideId?: number, status?: PatchStatus): Promise<WorklistItem[]> {
    return ok(this.client.GET("/api/worklist", { params: { query: { slide_id: slideId, status } } }));
  }

  patch(patchId: number): Promise<WorklistItem> {
    return ok(this.client.GET("/api/patches/{patch_id}", { params: { path: { patch_id: patchId } } }));
  }

  claim(patchId: number): Promise<WorklistItem> {
    return ok(this.client.POST("/api/patches/{patch_id}/claim", { params: { path: { patch_id: patchId } } }));
  }

  release(patchId: number): Promise<WorklistItem> {
    return ok(this.client.POST("/api/patches/{patch_id}/release", { params: { path: { patch_id: patchId } } }));
  }

  skip(patchId: number): Promise<WorklistItem> {
    return ok(this.client.POST("/api/patches/{patch_id}/skip", { params: { path: { patch_id: patchId } } }));
  }

  /** The patch's label mask as an 8-bit grey PNG (pixel = label value). */
  async mask(patchId: number, source: MaskSource = "latest", version?: number): Promise<Blob> {
    const { data, error, response } = await this.client.GET("/api/patches/{patch_id}/mask", {
      params: { path: { patch_id: patchId }, query: { source, version } },
      parseAs: "blob",
    });
    if (!response.ok || !data) throw toError(response, error);
    return data as Blob;
  }

  versions(patchId: number): Promise<CorrectionVersion[]> {
    return ok(this.client.GET("/api/patches/{patch_id}/versions", { params: { path: { patch_id: patchId } } }));
  }

  saveVersion(patchId: number, baseVersion: number, mask: RleMask): Promise<CorrectionVersion> {
    return ok(this.client.POST("/api/patches/{patch_id}/versions", {
      params: { path: { patch_id: patchId } },
      body: { base_version: baseVersion, mask },
    }));
  }

  revert(patchId: number, baseVersion: number, toVersion: number): Promise<CorrectionVersion> {
    return ok(this.client.POST("/api/patches/{patch_id}/revert", {
      params: { path: { patch_id: patchId } },
      body: { base_version: baseVersion, to_version: toVersion },
    }));
  }

  acceptPrediction(patchId: number, baseVersion: number): Promise<CorrectionVersion> {
    return ok(this.client.POST("/api/patches/{patch_id}/accept-prediction", {
      params: { path: { patch_id: patchId } },
      body: { base_version: baseVersion },
    }));
  }

  keepAnnotation(patchId: number, baseVersion: number): Promise<CorrectionVersion> {
    return ok(this.client.POST("/api/patches/{patch_id}/keep-annotation", {
      params: { path: { patch_id: patchId } },
      body: { base_version: baseVersion },
    }));
  }

  jobs(): Promise<Job[]> {
    return ok(this.client.GET("/api/jobs"));
  }

  startJob(kind: JobKind, slideId: number | null): Promise<Job> {
    return ok(this.client.POST("/api/jobs", { body: { kind, slide_id: slideId, params: {} } }));
  }

  /** Every inspection run, newest first. */
  inspections(): Promise<InspectionSummary[]> {
    return ok(this.client.GET("/api/inspections"));
  }

  /** A run's items at α and γ (the run's own when null), most suspect first. */
  inspectionItems(inspectionId: number, weights: Weights): Promise<InspectionItem[]> {
    return ok(this.client.GET("/api/inspections/{inspection_id}/items", {
      params: { path: { inspection_id: inspectionId }, query: weightQuery(weights) },
    }));
  }

  inspectionItem(inspectionId: number, itemId: number, weights: Weights): Promise<InspectionItemDetail> {
    return ok(this.client.GET("/api/inspections/{inspection_id}/items/{item_id}", {
      params: { path: { inspection_id: inspectionId, item_id: itemId }, query: weightQuery(weights) },
    }));
  }

  /** One of an item's three views as a PNG: the region with its overlay drawn. */
  async inspectionView(
    inspectionId: number, itemId: number, view: InspectionView, weights: Weights, selected: number | null,
  ): Promise<Blob> {
    const { data, error, response } = await this.client.GET("/api/inspections/{inspection_id}/items/{item_id}/views/{view}.png", {
      params: {
        path: { inspection_id: inspectionId, item_id: itemId, view },
        query: { ...weightQuery(weights), selected: selected ?? undefined },
      },
      parseAs: "blob",
    });
    if (!response.ok || !data) throw toError(response, error);
    return data as Blob;
  }

  /**
   * Stores a decision on an item (or one of its instances) as a new correction version;
   * `baseVersion` is the item's version the decision was made on (409 when stale).
   */
  decide(
    inspectionId: number, itemId: number, decision: InspectionDecision, instance: number | null,
    baseVersion: number | null,
  ): Promise<DecisionStored> {
    return ok(this.client.POST("/api/inspections/{inspection_id}/items/{item_id}/decisions", {
      params: { path: { inspection_id: inspectionId, item_id: itemId } },
      body: { decision, instance, base_version: baseVersion },
    }));
  }

  cancelJob(jobId: string): Promise<Job> {
    return ok(this.client.POST("/api/jobs/{job_id}/cancel", { params: { path: { job_id: jobId } } }));
  }
}
