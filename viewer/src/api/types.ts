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

export type InspectionSummary = Success<paths["/api/inspections"]["get"]>[number];
export type InspectionItem = Success<paths["/api/inspections/{inspection_id}/items"]["get"]>[number];
export type InspectionItemDetail = Success<paths["/api/inspections/{inspection_id}/items/{item_id}"]["get"]>;
export type InspectionInstance = InspectionItemDetail["instances"][number];
export type InspectionDecision = InspectionInstance["decision"] & string;
export type DecisionStored = Success<paths["/api/inspections/{inspection_id}/items/{item_id}/decisions"]["post"]>;
export type InspectionView =
  paths["/api/inspections/{inspection_id}/items/{item_id}/views/{view}.png"]["get"]["parameters"]["path"]["view"];
