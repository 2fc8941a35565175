/**
 * The site API's JSON types, taken from the generated schema (`npm run generate`).
 *
 * They are read off the routes rather than the schema's component names, so a renamed
 * Pydantic model on the server does not break the viewer while its routes keep their shape.
 */
import type { paths } from "./schema";

type JsonOf<R> = R extends { content: { "application/json": infer T } } ? T : never;
type Success<Op> = Op extends { responses: infer R }
  ? JsonOf<R[Extract<keyof R, 200 | 201 | 202>]>
  : never;

export type Health = Success<paths["/api/health"]["get"]>;
export type Me = Success<paths["/api/me"]["get"]>;
export type SlideSummary = Success<paths["/api/slides"]["get"]>[number];
export type SlideDetail = Success<paths["/api/slides/{slide_id}"]["get"]>;
export type DeepZoomInfo = SlideDetail["deepzoom"];
export type OverlayInfo = SlideDetail["overlays"][number];
export type OverlayKind = OverlayInfo["kind"];
export type Legend = OverlayInfo["legend"];
export type LabelInfo = SlideDetail["labels"][number];
export type WorklistItem = Success<paths["/api/worklist"]["get"]>[number];
export type PatchStatus = WorklistItem["status"];
export type CorrectionVersion = Success<paths["/api/patches/{patch_id}/versions"]["get"]>[number];
export type Job = Success<paths["/api/jobs"]["get"]>[number];
export type JobKind = Job["kind"];
export type MaskSource = NonNullable<
  NonNullable<paths["/api/patches/{patch_id}/mask"]["get"]["parameters"]["query"]>["source"]
>;

// The inspection routes (issue 15), as the contract between the slices describes them.
export type InspectionView = "annotation" | "combined" | "prediction";
export type InspectionDecision = "keep-annotation" | "accept-prediction" | "re-annotate";
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}
export interface InspectionSummary {
  id: number;
  name: string;
  created_at: string;
  source: string;
  n_items: number;
  alpha: number;
  gamma: number;
}
export interface InspectionItem {
  id: number;
  inspection_id: number;
  name: string;
  slide_id: number;
  slide_name: string;
  box: Box;
  mpp: number;
  overall: number;
  n_instances: number;
  n_suspect: number;
  decision: string | null;
  version: number;
}
export interface InspectionInstance {
  number: number;
  state: string;
  score: number;
  iou: number;
  area: number;
  certainty: number;
  suspect: boolean;
  bbox: Box;
  decision: string | null;
}
export interface InspectionItemDetail extends InspectionItem {
  instances: InspectionInstance[];
}
export interface DecisionStored {
  correction_id: number;
  version: number;
}
