import { IsInt, IsOptional, Length, Matches, Max, Min, ValidateBy } from 'class-validator';
import { IMAGE_REFERENCE, LIMITS, MEMORY_QUANTITY, memoryBytes, MIN_MEMORY_BYTES, NOT_BLANK } from '../services/rules.js';

/** Several class-validator decorators as one; `optional` lets null and undefined through (update inputs). */
function rules(optional: boolean, ...decorators: PropertyDecorator[]): PropertyDecorator {
  return (target, key) => {
    for (const decorate of optional ? [IsOptional(), ...decorators] : decorators) decorate(target, key);
  };
}

/** 1-max characters, not only white space. */
export const Text = (field: string, max: number, optional = false) =>
  rules(
    optional,
    Length(1, max, { message: `${field} must be 1-${max} characters` }),
    Matches(NOT_BLANK, { message: `${field} must not be blank` }),
  );

/** An integer within [min, max]. */
export const IntIn = (field: string, min: number, max: number, optional = false, hint = '') => {
  const message = `${field} must be an integer from ${min} to ${max}${hint}`;
  return rules(optional, IsInt({ message }), Min(min, { message }), Max(max, { message }));
};

export const ImageUrl = (optional = false) =>
  rules(
    optional,
    Length(1, LIMITS.url, { message: `url must be 1-${LIMITS.url} characters` }),
    Matches(IMAGE_REFERENCE, { message: 'url must be an image reference such as registry.example.org/vms/ubuntu:22.04' }),
  );

export const Memory = () =>
  rules(
    true,
    Matches(MEMORY_QUANTITY, { message: 'memory must be a Kubernetes quantity such as 3G or 2Gi' }),
    ValidateBy({
      name: 'kubevirtMinimumMemory',
      validator: {
        validate: (value: unknown) => typeof value !== 'string' || !MEMORY_QUANTITY.test(value) || memoryBytes(value) >= MIN_MEMORY_BYTES,
        defaultMessage: () => 'memory must be at least 1M: KubeVirt refuses a smaller memory request',
      },
    }),
  );

export const CpuCores = () => IntIn('cpuCores', 1, LIMITS.cpuCoresMax, true);

export const Lifetime = () => IntIn('instanceLifetimeMinutes', 1, LIMITS.lifetimeMinutesMax, true, ', or null for no limit');

export const MaxLifetime = () => IntIn('maxInstanceLifetimeMinutes', 1, LIMITS.lifetimeMinutesMax, true, ', or null for no extension');

export const MaxInstances = () => IntIn('maxInstances', 0, 1_000_000, true, ', or null for MAX_INSTANCES_PER_LAB');

export const Position = () => IntIn('position', 0, 10_000, true);

export const PageContent = () =>
  rules(true, Length(0, LIMITS.pageContent, { message: `content must be at most ${LIMITS.pageContent} characters` }));
