import type { EntityManager } from '@mikro-orm/core';
import { InstructionPage, Lab } from '../entities/index.js';
import { notFound } from '../errors.js';
import { bumpCatalogueVersion } from './catalogue-version.js';
import { parseId } from './ids.js';

export interface PageData {
  labId: string;
  title: string;
  content?: string | null;
  position?: number | null;
}

export class InstructionPageService {
  constructor(private readonly em: EntityManager) {}

  async get(id: string): Promise<InstructionPage | null> {
    return this.em.findOne(InstructionPage, { id: parseId(id) });
  }

  async create(data: PageData): Promise<InstructionPage> {
    const lab = await this.em.findOne(Lab, { id: parseId(data.labId, 'labId'), deletedAt: null });
    if (!lab) throw notFound('Lab', data.labId);
    let position = data.position;
    if (position == null) {
      const last = await this.em.findOne(InstructionPage, { lab: lab.id }, { orderBy: { position: 'desc' } });
      position = last ? last.position + 1 : 0;
    }
    const page = this.em.create(InstructionPage, {
      lab,
      title: data.title.trim(),
      content: data.content ?? null,
      position,
    } as unknown as InstructionPage);
    await this.em.flush();
    await bumpCatalogueVersion(this.em);
    return page;
  }

  async update(id: string, data: { title?: string | null; content?: string | null; position?: number | null }): Promise<InstructionPage> {
    const page = await this.em.findOne(InstructionPage, { id: parseId(id) });
    if (!page) throw notFound('InstructionPage', id);
    if (data.title != null) page.title = data.title.trim();
    if (data.content !== undefined) page.content = data.content;
    if (data.position != null) page.position = data.position;
    await this.em.flush();
    await bumpCatalogueVersion(this.em);
    return page;
  }

  async delete(id: string): Promise<boolean> {
    const page = await this.em.findOne(InstructionPage, { id: parseId(id) });
    if (!page) throw notFound('InstructionPage', id);
    await this.em.remove(page).flush();
    await bumpCatalogueVersion(this.em);
    return true;
  }
}
