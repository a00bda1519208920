import { crossSite } from '../../common/http/cross-site';
import { createBullBoard } from '@bull-board/api';
import { BullAdapter } from '@bull-board/api/bullAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { InjectQueue } from '@nestjs/bull';
import { Injectable, Logger } from '@nestjs/common';
import type { Queue } from 'bull';
import { NextFunction, Request, RequestHandler, Response, Router } from 'express';
import { RERUN_QUEUE } from '../../rerun/rerun.constants';
import { AdminAccess } from '../../auth/admin-access';

export const QUEUES_PATH = '/queues';

/**
 * Bull Board on the API's Express instance at /queues, for admins: the same OpenHIM credentials as
 * the API. A browser can only send Basic credentials by itself (it re-sends them with the
 * dashboard's own asset and API requests), so Basic is how people use it; token headers work for
 * scripts.
 */
@Injectable()
export class QueueDashboard {
  private readonly logger = new Logger('QueueDashboard');

  constructor(
    @InjectQueue(RERUN_QUEUE) private readonly queue: Queue,
    private readonly access: AdminAccess,
  ) {}

  /** The middleware serving /queues and everything under it; passes anything else on. */
  handler(): RequestHandler {
    const board = new ExpressAdapter();
    board.setBasePath(QUEUES_PATH);
    createBullBoard({
      queues: [new BullAdapter(this.queue)],
      serverAdapter: board,
      options: { uiConfig: { boardTitle: 'OpenHIM reruns', hideDocsLink: true } },
    });
    const router = Router();
    router.use(QUEUES_PATH, (request, response, next) => void this.guard(request, response, next), board.getRouter());
    return router;
  }

  private async guard(request: Request, response: Response, next: NextFunction): Promise<void> {
    try {
      // Basic credentials are re-sent by the browser to any page asking for them: refuse what
      // another site makes the browser send (the API answers CORS for any origin).
      if (crossSite(request)) {
        this.logger.warn(
          `Refused a cross-site ${request.method} ${request.originalUrl.slice(0, 200)} from ${request.headers.origin ?? '(no origin)'}`,
        );
        response.status(403).type('text/plain').send('Cross-site requests to the queue dashboard are not allowed');
        return;
      }
      const decision = await this.access.check(request, 'queues');
      if (!decision.ok) return AdminAccess.refuse(response, decision);
      response.set({
        'X-Frame-Options': 'DENY',
        'Content-Security-Policy': "frame-ancestors 'none'",
        'Cache-Control': 'no-store',
        'Referrer-Policy': 'same-origin',
        'X-Content-Type-Options': 'nosniff',
      });
      next();
    } catch (error) {
      next(error);
    }
  }
}
