import { Model } from '../onnx/ir';
import { customDomains } from '../runtime/select';

/**
 * Make `model` import `domain` at `version` or later: adds the import when missing, raises a
 * lower one, keeps a higher one. Returns the imported version. Needed before encoding a model
 * that gained custom-domain nodes: ONNX (and our decoder's validation) refuse a node whose
 * domain is not imported. '' and 'ai.onnx' are the same (default) domain.
 */
export function ensureOpsetImport(model: Model, domain: string, version: number): number {
  if (!Number.isInteger(version) || version < 1) throw new Error(`opset version must be a positive integer, got ${version}`);
  const norm = (d: string): string => (d === 'ai.onnx' ? '' : d);
  const found = model.opsetImports.find((o) => norm(o.domain) === norm(domain));
  if (!found) {
    model.opsetImports.push({ domain, version });
    return version;
  }
  if (found.version < version) found.version = version;
  return found.version;
}

/** Import every custom domain the model's nodes use (at version 1 when not imported yet). */
export function importCustomDomains(model: Model): string[] {
  const domains = customDomains(model);
  for (const d of domains) ensureOpsetImport(model, d, 1);
  return domains;
}
