import type { EntityManager } from '@mikro-orm/core';
import { Image, LabVm } from '../entities/index.js';
import { conflict, notFound } from '../errors.js';
import type { Connection, PageArgs } from './pagination.js';
import { paginate } from './pagination.js';
import { parseId } from './ids.js';
import { bumpCatalogueVersion } from './catalogue-version.js';
import { searchFilter } from './search.js';

export interface ImageData {
  name: string;
  description: string;
  url: string;
  cpuCores?: number | null;
  memory?: string | null;
}

export class ImageService {
  constructor(
    private readonly em: EntityManager,
    private readonly maxPageSize: number,
  ) {}

  async get(id: string): Promise<Image | null> {
    return this.em.findOne(Image, { id: parseId(id) });
  }

  async list(args: PageArgs & { search?: string | null }): Promise<Connection<Image>> {
    return paginate(this.em, Image, searchFilter(args.search, ['name', 'description']), args, this.maxPageSize, { plain: true });
  }

  async create(data: ImageData): Promise<Image> {
    await this.ensureNameFree(data.name);
    const image = this.em.create(Image, {
      name: data.name.trim(),
      description: data.description.trim(),
      url: data.url.trim(),
      cpuCores: data.cpuCores ?? undefined,
      memory: data.memory ?? undefined,
    } as Image);
    await this.em.flush();
    await bumpCatalogueVersion(this.em);
    return image;
  }

  async update(id: string, data: { [K in keyof ImageData]?: ImageData[K] | null }): Promise<Image> {
    const image = await this.em.findOne(Image, { id: parseId(id) });
    if (!image) throw notFound('Image', id);
    if (data.name != null && data.name.trim() !== image.name) await this.ensureNameFree(data.name);
    if (data.name != null) image.name = data.name.trim();
    if (data.description != null) image.description = data.description.trim();
    if (data.url != null) image.url = data.url.trim();
    if (data.cpuCores != null) image.cpuCores = data.cpuCores;
    if (data.memory != null) image.memory = data.memory;
    await this.em.flush();
    await bumpCatalogueVersion(this.em);
    return image;
  }

  /** CONFLICT while a lab uses the image (the original answered 500). */
  async delete(id: string): Promise<boolean> {
    const image = await this.em.findOne(Image, { id: parseId(id) });
    if (!image) throw notFound('Image', id);
    const users = await this.em.count(LabVm, { image: image.id });
    if (users > 0) throw conflict(`Image is used by ${users} lab VM(s); remove them first`);
    await this.em.remove(image).flush();
    await bumpCatalogueVersion(this.em);
    return true;
  }

  private async ensureNameFree(name: string): Promise<void> {
    if (await this.em.count(Image, { name: name.trim() })) throw conflict('An image with this name already exists', 'name');
  }
}
