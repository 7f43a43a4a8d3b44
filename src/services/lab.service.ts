import type { EntityManager, FilterQuery } from '@mikro-orm/core';
import { Image, InstructionPage, Lab, LabInstance, LabInstanceStatus, LabVm } from '../entities/index.js';
import { badInput, conflict, notFound } from '../errors.js';
import { paginate, type Connection, type PageArgs } from './pagination.js';
import { parseId } from './ids.js';
import { bumpCatalogueVersion } from './catalogue-version.js';
import { searchFilter } from './search.js';
import { lockInstances } from '../db.js';

export interface LabData {
  name: string;
  namespacePrefix: string;
  description: string;
  instanceLifetimeMinutes?: number | null;
  maxInstances?: number | null;
  maxInstanceLifetimeMinutes?: number | null;
  vms: { name: string; imageId: string }[];
}

export interface LabUpdate {
  name?: string | null;
  description?: string | null;
  instanceLifetimeMinutes?: number | null;
  maxInstances?: number | null;
  maxInstanceLifetimeMinutes?: number | null;
}

export class LabService {
  constructor(
    private readonly em: EntityManager,
    private readonly maxPageSize: number,
  ) {}

  async get(id: string): Promise<Lab | null> {
    return this.em.findOne(Lab, { id: parseId(id), deletedAt: null });
  }

  async require(id: string, field = 'id'): Promise<Lab> {
    const lab = await this.em.findOne(Lab, { id: parseId(id, field), deletedAt: null });
    if (!lab) throw notFound('Lab', id);
    return lab;
  }

  async list(args: PageArgs & { search?: string | null }): Promise<Connection<Lab>> {
    const search = searchFilter(args.search, ['name', 'description']);
    return paginate<Lab>(this.em, Lab, () => ({ $and: [search(), { deletedAt: null }] }) as FilterQuery<Lab>, args, this.maxPageSize, { plain: true });
  }

  /** Creates the lab and its VMs in one transaction: all or nothing. */
  async create(data: LabData): Promise<Lab> {
    await this.ensureFree('name', data.name.trim());
    await this.ensureFree('namespacePrefix', data.namespacePrefix);
    const images = await this.resolveImages(data.vms);
    const seen = new Set<string>();
    data.vms.forEach((vm, i) => {
      if (seen.has(vm.name)) throw badInput(`vms.${i}.name`, 'VM names must be unique within a lab');
      seen.add(vm.name);
    });
    return this.em.transactional(async (em) => {
      const lab = em.create(Lab, {
        name: data.name.trim(),
        namespacePrefix: data.namespacePrefix,
        description: data.description.trim(),
        instanceLifetimeMinutes: data.instanceLifetimeMinutes ?? null,
        maxInstances: data.maxInstances ?? null,
        maxInstanceLifetimeMinutes: data.maxInstanceLifetimeMinutes ?? null,
      } as Lab);
      for (const [i, vm] of data.vms.entries()) {
        em.create(LabVm, { name: vm.name, lab, image: images[i] } as unknown as LabVm);
      }
      await em.flush();
      await bumpCatalogueVersion(em);
      return lab;
    });
  }

  async update(id: string, data: LabUpdate): Promise<Lab> {
    const lab = await this.require(id);
    if (data.name != null && data.name.trim() !== lab.name) await this.ensureFree('name', data.name.trim());
    if (data.name != null) lab.name = data.name.trim();
    if (data.description != null) lab.description = data.description.trim();
    if (data.instanceLifetimeMinutes !== undefined) lab.instanceLifetimeMinutes = data.instanceLifetimeMinutes;
    if (data.maxInstances !== undefined) lab.maxInstances = data.maxInstances;
    if (data.maxInstanceLifetimeMinutes !== undefined) lab.maxInstanceLifetimeMinutes = data.maxInstanceLifetimeMinutes;
    await this.em.flush();
    await bumpCatalogueVersion(this.em);
    return lab;
  }

  /**
   * Removes the lab from the catalogue with its VMs and pages; CONFLICT while it has instances that are
   * not STOPPED. The lab row itself stays, hidden (deletedAt), so that its instances keep their history.
   * Counted and deleted in one transaction under the instances lock that startLab also takes, so a
   * start at the same moment either comes first and is counted, or finds the lab gone: never both OK.
   */
  async delete(id: string): Promise<boolean> {
    const labId = parseId(id);
    await this.em.transactional(async (tx) => {
      await lockInstances(tx);
      const lab = await tx.findOne(Lab, { id: labId, deletedAt: null });
      if (!lab) throw notFound('Lab', id);
      const running = await tx.count(LabInstance, { lab: lab.id, status: { $ne: LabInstanceStatus.STOPPED } });
      if (running) throw conflict(`Lab has ${running} instance(s) that are not stopped; stop them first`);
      await tx.nativeDelete(LabVm, { lab: lab.id });
      await tx.nativeDelete(InstructionPage, { lab: lab.id });
      await tx.nativeUpdate(Lab, { id: lab.id }, { deletedAt: new Date() });
      await bumpCatalogueVersion(tx);
    });
    return true;
  }

  async addVm(labId: string, vm: { name: string; imageId: string }): Promise<LabVm> {
    const lab = await this.require(labId, 'labId');
    const [image] = await this.resolveImages([vm], 'imageId');
    if (await this.em.count(LabVm, { lab: lab.id, name: vm.name })) {
      throw conflict('This lab already has a VM with this name', 'name');
    }
    const labVm = this.em.create(LabVm, { name: vm.name, lab, image } as unknown as LabVm);
    await this.em.flush();
    await bumpCatalogueVersion(this.em);
    return labVm;
  }

  async removeVm(id: string): Promise<boolean> {
    const vm = await this.em.findOne(LabVm, { id: parseId(id) });
    if (!vm) throw notFound('LabVm', id);
    await this.em.remove(vm).flush();
    await bumpCatalogueVersion(this.em);
    return true;
  }

  private async resolveImages(vms: { imageId: string }[], field?: string): Promise<Image[]> {
    const ids = vms.map((vm, i) => parseId(vm.imageId, field ?? `vms.${i}.imageId`));
    const found = await this.em.find(Image, { id: { $in: ids } });
    const byId = new Map(found.map((img) => [img.id, img]));
    return ids.map((id, i) => {
      const image = byId.get(id);
      if (!image) throw badInput(field ?? `vms.${i}.imageId`, `Image ${id} does not exist`);
      return image;
    });
  }

  private async ensureFree(field: 'name' | 'namespacePrefix', value: string): Promise<void> {
    if (await this.em.count(Lab, { [field]: value, deletedAt: null })) {
      throw conflict(`A lab with this ${field} already exists`, field);
    }
  }
}
